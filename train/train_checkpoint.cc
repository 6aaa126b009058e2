#include "train/train_checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "model/safetensors.h"
#include "train/rng_state.h"

namespace align {
namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "align.trainer_state";
constexpr int kVersion = 1;
constexpr const char* kStateFile = "trainer_state.json";
constexpr const char* kOptimizerFile = "optimizer.safetensors";
constexpr const char* kOptimizerShardDir = "optimizer";
constexpr const char* kPartial = ".partial";

// Makes a directory's entries (new files, renames) durable.
void fsync_dir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) throw IoError("cannot open directory " + dir + ": " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) throw IoError("cannot fsync directory " + dir + ": " + std::strerror(err));
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "step-00000123" -> 123; nullopt for any other name (including "step-00000123.partial").
std::optional<int64_t> parse_step_name(const std::string& name) {
  const std::string prefix = "step-";
  if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size() ||
      name.size() > prefix.size() + 18)
    return std::nullopt;
  int64_t step = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

void remove_stale_partials(const std::string& ckpt_root) {
  for (const auto& entry : fs::directory_iterator(ckpt_root)) {
    if (ends_with(entry.path().filename().string(), kPartial)) fs::remove_all(entry.path());
  }
}

void write_optimizer_state(const std::string& path, const NamedTensors& tensors) {
  std::vector<TensorSource> sources;
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    if (!names.insert(name).second) throw Error("optimizer state names '" + name + "' twice");
    const torch::Tensor t = tensor;
    sources.push_back(
        {name, from_torch_dtype(t.scalar_type()), t.sizes().vec(), [t](const auto& sink) {
           const torch::Tensor cpu = t.detach().to(torch::kCPU).contiguous();
           sink(cpu.data_ptr(), cpu.nbytes());
         }});
  }
  write_safetensors(path, sources);
}

nlohmann::json state_to_json(const TrainerState& state) {
  return {{"format", kFormat},      {"version", kVersion},     {"step", state.step},
          {"epoch", state.epoch},   {"data", state.data},      {"rng", capture_rng_state()},
          {"config", state.config}, {"metrics", state.metrics}};
}

int64_t read_count(const nlohmann::json& j, const char* field, const std::string& path) {
  const auto& v = j.at(field);
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    throw InputError(path + ": \"" + field + "\" must be an integer >= 0, found " + v.dump());
  }
  return v.get<int64_t>();
}

// Parses and checks trainer_state.json; `dir_step` is the step the directory name promises.
TrainerState read_state(const std::string& path, int64_t dir_step) {
  const nlohmann::json j = parse_json(read_file(path), path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object, found " + j.type_name());
  const std::vector<std::string> fields = {"format", "version", "step",   "epoch",
                                           "data",   "rng",     "config", "metrics"};
  for (const auto& f : fields) {
    if (!j.contains(f)) throw InputError(path + ": missing field \"" + f + "\"");
  }
  for (const auto& [key, value] : j.items()) {
    if (std::find(fields.begin(), fields.end(), key) == fields.end()) {
      throw InputError(path + ": unknown field \"" + key + "\"");
    }
  }
  if (j["format"] != kFormat) {
    throw InputError(path + ": \"format\" must be \"" + kFormat + "\", found " +
                     j["format"].dump());
  }
  if (j["version"] != kVersion) {
    throw InputError(path + ": unsupported \"version\" " + j["version"].dump() + " (expected " +
                     std::to_string(kVersion) + ")");
  }
  TrainerState state;
  state.step = read_count(j, "step", path);
  state.epoch = read_count(j, "epoch", path);
  if (state.step != dir_step) {
    throw InputError(path + ": \"step\" is " + std::to_string(state.step) +
                     " but the directory is for step " + std::to_string(dir_step));
  }
  state.data = j["data"];
  state.config = j["config"];
  state.metrics = j["metrics"];
  state.rng = j["rng"];
  const auto& rng = state.rng;
  if (!rng.is_object() || !rng.contains("cpu") || !rng["cpu"].is_string() ||
      !rng.contains("cuda") || !rng["cuda"].is_array() || rng.size() != 2) {
    throw InputError(path + ": \"rng\" must be {\"cpu\": string, \"cuda\": [string, ...]}, found " +
                     rng.dump());
  }
  base64_decode(rng["cpu"].get<std::string>(), path + ": rng.cpu");
  for (size_t d = 0; d < rng["cuda"].size(); ++d) {
    const auto& s = rng["cuda"][d];
    if (!s.is_string())
      throw InputError(path + ": rng.cuda[" + std::to_string(d) + "] not a string");
    base64_decode(s.get<std::string>(), path + ": rng.cuda[" + std::to_string(d) + "]");
  }
  return state;
}

}  // namespace

std::string checkpoints_dir(const std::string& output_dir) {
  return (fs::path(output_dir) / "checkpoints").string();
}

std::string checkpoint_dir_name(int64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "step-%08lld", static_cast<long long>(step));
  return buf;
}

std::string save_train_checkpoint(const std::string& output_dir, const TrainerState& state,
                                  const NamedTensors& weights, const NamedTensors& optimizer_state,
                                  const TrainCheckpointOptions& options) {
  if (state.step < 0 || state.epoch < 0) {
    throw Error("save_train_checkpoint: step and epoch must be >= 0");
  }
  ProcessGroup* group =
      options.group != nullptr && options.group->world_size() > 1 ? options.group : nullptr;
  const bool main_rank = group == nullptr || group->is_main();
  const std::string root = checkpoints_dir(output_dir);
  const std::string name = checkpoint_dir_name(state.step);
  const std::string final_dir = (fs::path(root) / name).string();
  const std::string partial = final_dir + kPartial;
  if (main_rank) {
    fs::create_directories(root);
    remove_stale_partials(root);
    fs::create_directories(partial);
  }
  if (group != nullptr && options.sharded_optimizer) {
    group->barrier();  // the partial folder exists
    const std::string shards = (fs::path(partial) / kOptimizerShardDir).string();
    fs::create_directories(shards);
    char name_buf[64];
    std::snprintf(name_buf, sizeof(name_buf), "shard-%05d-of-%05d.safetensors", group->rank(),
                  group->world_size());
    write_optimizer_state((fs::path(shards) / name_buf).string(), optimizer_state);
    fsync_dir(shards);
    group->barrier();  // every shard is written
  }
  if (!main_rank) {
    group->barrier();  // rank 0 has renamed the checkpoint complete
    return final_dir;
  }
  save_checkpoint(partial, weights, options.max_shard_bytes);
  if (group == nullptr || !options.sharded_optimizer) {
    write_optimizer_state((fs::path(partial) / kOptimizerFile).string(), optimizer_state);
  }
  write_file_atomic((fs::path(partial) / kStateFile).string(), state_to_json(state).dump(2) + "\n");
  fsync_dir(partial);

  // A checkpoint for this step from an earlier attempt is moved aside, then dropped.
  const std::string replaced = final_dir + ".replaced" + kPartial;
  const bool had_old = fs::exists(final_dir);
  if (had_old) fs::rename(final_dir, replaced);
  fs::rename(partial, final_dir);
  fsync_dir(root);
  if (had_old) fs::remove_all(replaced);

  if (options.keep_last > 0) {
    auto complete = list_checkpoints(output_dir);
    // Newest first by step; the checkpoint just written always stays.
    std::reverse(complete.begin(), complete.end());
    int64_t kept = 1;
    for (const auto& [step, dir] : complete) {
      if (step == state.step || step == options.keep_step) continue;
      if (kept < options.keep_last) {
        ++kept;
        continue;
      }
      const std::string doomed = dir + kPartial;
      fs::rename(dir, doomed);
      fs::remove_all(doomed);
    }
    fsync_dir(root);
  }
  if (group != nullptr) group->barrier();
  return final_dir;
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir) {
  std::vector<std::pair<int64_t, std::string>> found;
  const std::string root = checkpoints_dir(output_dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) return found;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (!entry.is_directory()) continue;
    if (auto step = parse_step_name(entry.path().filename().string())) {
      found.emplace_back(*step, entry.path().string());
    }
  }
  std::sort(found.begin(), found.end());
  return found;
}

std::optional<std::string> find_latest_checkpoint(const std::string& output_dir) {
  const auto found = list_checkpoints(output_dir);
  if (found.empty()) return std::nullopt;
  return found.back().second;
}

LoadedTrainCheckpoint load_train_checkpoint(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(dir + ": not a checkpoint directory");
  const std::string base = fs::path(dir).lexically_normal().filename().string();
  const auto dir_step =
      parse_step_name(base.empty() ? fs::path(dir).parent_path().filename().string() : base);
  if (!dir_step) {
    throw InputError(dir + ": a checkpoint directory is named step-<digits>, e.g. step-00000123");
  }
  LoadedTrainCheckpoint loaded;
  loaded.dir = dir;
  loaded.state_path = (fs::path(dir) / kStateFile).string();
  if (!fs::exists(loaded.state_path)) throw InputError(loaded.state_path + ": missing");
  loaded.state = read_state(loaded.state_path, *dir_step);
  loaded.weights = Checkpoint::open(dir);
  const std::string optimizer_path = (fs::path(dir) / kOptimizerFile).string();
  const std::string shard_dir = (fs::path(dir) / kOptimizerShardDir).string();
  if (fs::exists(optimizer_path)) {
    loaded.optimizer = Checkpoint::open(optimizer_path);
    loaded.optimizer_files.push_back(loaded.optimizer);
  } else if (fs::is_directory(shard_dir)) {
    std::vector<std::string> shards;
    for (const auto& entry : fs::directory_iterator(shard_dir))
      shards.push_back(entry.path().string());
    std::sort(shards.begin(), shards.end());
    int world = -1;
    for (size_t r = 0; r < shards.size(); ++r) {
      int rank = -1, of = -1;
      const std::string file = fs::path(shards[r]).filename().string();
      if (std::sscanf(file.c_str(), "shard-%d-of-%d.safetensors", &rank, &of) != 2 ||
          rank != static_cast<int>(r) || (world >= 0 && of != world)) {
        throw InputError(shards[r] + ": expected optimizer shard " + std::to_string(r) +
                         " named shard-RRRRR-of-NNNNN.safetensors, one per rank");
      }
      world = of;
      loaded.optimizer_files.push_back(Checkpoint::open(shards[r]));
    }
    if (world < 0 || static_cast<int>(shards.size()) != world) {
      throw InputError(shard_dir + ": holds " + std::to_string(shards.size()) +
                       " optimizer shards, expected " + std::to_string(std::max(world, 1)));
    }
  } else {
    throw InputError(optimizer_path + ": missing (and no " + kOptimizerShardDir + "/ shards)");
  }
  return loaded;
}

NamedTensors optimizer_state_for(const LoadedTrainCheckpoint& checkpoint,
                                 const std::set<std::string>& params) {
  NamedTensors state;
  for (const Checkpoint& file : checkpoint.optimizer_files) {
    for (const std::string& name : file.names()) {
      const size_t slash = name.find('/');
      if (slash == std::string::npos || params.count(name.substr(slash + 1)) == 0) continue;
      state.emplace_back(name, file.get(name, to_torch_dtype(file.view(name).dtype), torch::kCPU));
    }
  }
  return state;
}

}  // namespace align
