#include "model/checkpoint.h"

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "common/name_list.h"

namespace align {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSingleFile = "model.safetensors";
constexpr const char* kIndexFile = "model.safetensors.index.json";

std::string shard_name(size_t k, size_t n) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "model-%05zu-of-%05zu.safetensors", k, n);
  return buf;
}

// {"metadata": {...}, "weight_map": {tensor: shard file}} -> tensor -> shard file.
std::map<std::string, std::string> read_index(const std::string& index_path) {
  nlohmann::json index = parse_json(read_file(index_path), index_path, {true});
  if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object()) {
    throw InputError(index_path + ": expected an object with a \"weight_map\" object");
  }
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, shard] : index["weight_map"].items()) {
    if (!shard.is_string()) {
      throw InputError(index_path + ": weight_map['" + name + "'] must be a file name, found " +
                       shard.dump());
    }
    std::string file = shard.get<std::string>();
    if (file.empty() || file.find('/') != std::string::npos) {
      throw InputError(index_path + ": weight_map['" + name + "'] = '" + file +
                       "' is not a file name in the checkpoint directory");
    }
    weight_map[name] = file;
  }
  return weight_map;
}

}  // namespace

torch::ScalarType to_torch_dtype(Dtype dtype) {
  switch (dtype) {
    case Dtype::BOOL:
      return torch::kBool;
    case Dtype::U8:
      return torch::kUInt8;
    case Dtype::I8:
      return torch::kInt8;
    case Dtype::F8_E5M2:
      return torch::kFloat8_e5m2;
    case Dtype::F8_E4M3:
      return torch::kFloat8_e4m3fn;
    case Dtype::I16:
      return torch::kInt16;
    case Dtype::U16:
      return torch::kUInt16;
    case Dtype::F16:
      return torch::kFloat16;
    case Dtype::BF16:
      return torch::kBFloat16;
    case Dtype::I32:
      return torch::kInt32;
    case Dtype::U32:
      return torch::kUInt32;
    case Dtype::F32:
      return torch::kFloat32;
    case Dtype::F64:
      return torch::kFloat64;
    case Dtype::I64:
      return torch::kInt64;
    case Dtype::U64:
      return torch::kUInt64;
  }
  throw InputError(std::string("dtype ") + dtype_name(dtype) + " has no Torch equivalent");
}

Dtype from_torch_dtype(torch::ScalarType dtype) {
  for (Dtype d : {Dtype::BOOL, Dtype::U8, Dtype::I8, Dtype::F8_E5M2, Dtype::F8_E4M3, Dtype::I16,
                  Dtype::U16, Dtype::F16, Dtype::BF16, Dtype::I32, Dtype::U32, Dtype::F32,
                  Dtype::F64, Dtype::I64, Dtype::U64}) {
    if (to_torch_dtype(d) == dtype) return d;
  }
  throw Error(std::string("Torch dtype ") + c10::toString(dtype) + " cannot be saved");
}

Checkpoint Checkpoint::open(const std::string& path) {
  Checkpoint ckpt;
  ckpt.source_ = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path + ": no such file or directory");
  if (!fs::is_directory(path)) {
    auto file = SafetensorsFile::open(path);
    ckpt.files_.push_back(file);
    for (const auto& [name, view] : file->tensors()) {
      ckpt.views_[name] = view;
      ckpt.owner_[name] = file;
    }
    return ckpt;
  }
  const std::string index_path = (fs::path(path) / kIndexFile).string();
  if (!fs::exists(index_path)) {
    const std::string single = (fs::path(path) / kSingleFile).string();
    if (!fs::exists(single)) {
      throw InputError(path + ": no " + kSingleFile + " or " + kIndexFile +
                       " (expected a Hugging Face model directory)");
    }
    return open(single);
  }
  ckpt.source_ = index_path;
  const auto weight_map = read_index(index_path);
  std::map<std::string, std::shared_ptr<const SafetensorsFile>> shards;
  for (const auto& [name, shard] : weight_map) {
    if (shards.count(shard)) continue;
    const std::string shard_path = (fs::path(path) / shard).string();
    if (!fs::exists(shard_path)) {
      throw InputError(index_path + ": lists shard " + shard + ", which is missing from " + path);
    }
    shards[shard] = SafetensorsFile::open(shard_path);
    ckpt.files_.push_back(shards[shard]);
  }
  for (const auto& [name, shard] : weight_map) {
    const auto& file = shards.at(shard);
    auto it = file->tensors().find(name);
    if (it == file->tensors().end()) {
      throw InputError(index_path + ": places tensor '" + name + "' in " + file->path() +
                       ", which does not contain it");
    }
    ckpt.views_[name] = it->second;
    ckpt.owner_[name] = file;
  }
  for (const auto& file : ckpt.files_) {
    for (const auto& [name, view] : file->tensors()) {
      if (!weight_map.count(name)) {
        throw InputError(file->path() + ": holds tensor '" + name + "', which " + index_path +
                         " does not list");
      }
    }
  }
  return ckpt;
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> names;
  for (const auto& [name, view] : views_)
    names.push_back(name);
  return names;
}

const TensorView& Checkpoint::view(const std::string& name) const {
  auto it = views_.find(name);
  if (it == views_.end()) throw InputError(source_ + ": no tensor named '" + name + "'");
  return it->second;
}

torch::Tensor Checkpoint::get(const std::string& name, torch::ScalarType dtype,
                              torch::Device device) const {
  const TensorView& v = view(name);
  const torch::ScalarType stored = to_torch_dtype(v.dtype);
  if (c10::isFloatingType(dtype) && !c10::isFloatingType(stored)) {
    // Integer bytes read as weights would give a model of garbage (all log-probs 0.0 or worse).
    throw InputError(source_ + ": tensor '" + name + "' is stored as " + dtype_name(v.dtype) +
                     ", expected a floating-point dtype (F32, BF16, F16, F64)");
  }
  auto options = torch::TensorOptions().dtype(stored);
  const bool aligned = reinterpret_cast<uintptr_t>(v.data) % dtype_size(v.dtype) == 0;
  torch::Tensor tensor;
  if (aligned) {
    // Zero-copy over the private mapping; the deleter keeps the mapping alive.
    auto keep = owner_.at(name);
    tensor = torch::from_blob(
        const_cast<uint8_t*>(v.data), v.shape, [keep](void*) {}, options);
  } else {
    tensor = torch::empty(v.shape, options);
    if (v.nbytes) std::memcpy(tensor.data_ptr(), v.data, v.nbytes);
  }
  return tensor.to(device, dtype);
}

void Checkpoint::check(const TensorShapes& expected) const {
  std::vector<std::string> missing, misshaped, unexpected;
  std::set<std::string> wanted;
  for (const auto& [name, shape] : expected) {
    wanted.insert(name);
    auto it = views_.find(name);
    if (it == views_.end()) {
      missing.push_back(name);
    } else if (it->second.shape != shape) {
      misshaped.push_back(name + " (expected " + shape_str(shape) + ", found " +
                          shape_str(it->second.shape) + ")");
    }
  }
  for (const auto& [name, view] : views_) {
    if (!wanted.count(name)) unexpected.push_back(name);
  }
  if (missing.empty() && misshaped.empty() && unexpected.empty()) return;
  std::string message = source_ + ": checkpoint does not match the model config";
  append_name_list(message, "missing tensors", missing);
  append_name_list(message, "tensors with the wrong shape", misshaped);
  append_name_list(message, "unexpected tensors", unexpected);
  throw InputError(message);
}

void save_checkpoint(const std::string& dir, const std::vector<TensorToSave>& tensors,
                     int64_t max_shard_bytes) {
  fs::create_directories(dir);
  // Greedy shards in declaration order, as transformers does.
  std::vector<std::vector<const TensorToSave*>> shards(1);
  int64_t shard_bytes = 0, total_bytes = 0;
  for (const auto& t : tensors) {
    int64_t nbytes = num_elements(t.shape) * static_cast<int64_t>(c10::elementSize(t.dtype));
    if (!shards.back().empty() && shard_bytes + nbytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(&t);
    shard_bytes += nbytes;
    total_bytes += nbytes;
  }
  nlohmann::json weight_map = nlohmann::json::object();
  std::set<std::string> written;
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file =
        shards.size() == 1 ? std::string(kSingleFile) : shard_name(k + 1, shards.size());
    std::vector<TensorSource> sources;
    for (const TensorToSave* t : shards[k]) {
      sources.push_back({t->name, from_torch_dtype(t->dtype), t->shape, [t](const auto& sink) {
                           torch::Tensor x = t->produce();
                           if (x.sizes().vec() != t->shape) {
                             throw Error("tensor '" + t->name + "' was produced with shape " +
                                         shape_str(x.sizes().vec()) + ", expected " +
                                         shape_str(t->shape));
                           }
                           x = x.to(torch::kCPU, t->dtype).contiguous();
                           sink(x.data_ptr(), x.nbytes());
                         }});
      weight_map[t->name] = file;
    }
    write_safetensors((fs::path(dir) / file).string(), sources);
    written.insert(file);
  }
  const std::string index_path = (fs::path(dir) / kIndexFile).string();
  if (shards.size() > 1) {
    nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}},
                            {"weight_map", weight_map}};
    write_file_atomic(index_path, index.dump(2) + "\n");
    written.insert(kIndexFile);
  }
  // Remove weights left by an earlier save with a different layout.
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool weights = name == kIndexFile || (name.rfind("model", 0) == 0 &&
                                                entry.path().extension() == ".safetensors");
    if (weights && !written.count(name)) fs::remove(entry.path());
  }
}

void save_checkpoint(const std::string& dir,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     int64_t max_shard_bytes) {
  std::vector<TensorToSave> list;
  for (const auto& [name, tensor] : tensors) {
    list.push_back({name, tensor.sizes().vec(), tensor.scalar_type(), [tensor] { return tensor; }});
  }
  save_checkpoint(dir, list, max_shard_bytes);
}

}  // namespace align
