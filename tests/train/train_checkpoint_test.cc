#include "train/train_checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tests/test_util.h"
#include "train/adamw.h"
#include "train/rng_state.h"

namespace align {
namespace {
namespace fs = std::filesystem;

struct Saved {
  NamedTensors weights;
  NamedTensors optimizer;
};

Saved some_tensors(float offset) {
  Saved s;
  s.weights = {{"lora_A", torch::arange(6, torch::kFloat32).reshape({2, 3}) + offset},
               {"lora_B", torch::full({3, 2}, offset, torch::kBFloat16)}};
  s.optimizer = {{"exp_avg/lora_A", torch::full({2, 3}, 0.5f + offset)},
                 {"step/lora_A", torch::tensor(int64_t{7}).reshape({})}};
  return s;
}

TrainerState state_at(int64_t step) {
  TrainerState st;
  st.step = step;
  st.epoch = 1;
  st.data = {{"order_seed", 11}, {"position", 42}};
  st.config = {{"optimizer", {{"lr", 1e-6}}}};
  st.metrics = {{"best_eval_loss", 1.25}};
  return st;
}

std::string save(const std::string& out, int64_t step, int64_t keep_last = 0) {
  const Saved s = some_tensors(static_cast<float>(step));
  TrainCheckpointOptions o;
  o.keep_last = keep_last;
  return save_train_checkpoint(out, state_at(step), s.weights, s.optimizer, o);
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(TrainCheckpoint, RoundTrip) {
  testing::TempDir out;
  const std::string dir = save(out.path(), 123);
  EXPECT_EQ(dir, out.path() + "/checkpoints/step-00000123");
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"model.safetensors", "optimizer.safetensors",
                                                    "trainer_state.json"}));
  EXPECT_EQ(entries(out.path() + "/checkpoints"), std::vector<std::string>{"step-00000123"});

  ASSERT_EQ(find_latest_checkpoint(out.path()), dir);
  const LoadedTrainCheckpoint ckpt = load_train_checkpoint(dir);
  EXPECT_EQ(ckpt.state.step, 123);
  EXPECT_EQ(ckpt.state.epoch, 1);
  EXPECT_EQ(ckpt.state.data, state_at(123).data);
  EXPECT_EQ(ckpt.state.config, state_at(123).config);
  EXPECT_EQ(ckpt.state.metrics, state_at(123).metrics);
  EXPECT_EQ(ckpt.state_path, dir + "/trainer_state.json");

  const Saved want = some_tensors(123);
  for (const auto& [name, t] : want.weights) {
    const torch::Tensor got = ckpt.weights.get(name, t.scalar_type(), torch::kCPU);
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
  EXPECT_EQ(ckpt.weights.view("lora_B").dtype, Dtype::BF16);  // each tensor keeps its dtype
  EXPECT_TRUE(torch::equal(ckpt.optimizer.get("exp_avg/lora_A", torch::kFloat32, torch::kCPU),
                           want.optimizer[0].second));
  EXPECT_EQ(ckpt.optimizer.get("step/lora_A", torch::kInt64, torch::kCPU).item<int64_t>(), 7);
}

// The single optimizer file moved into optimizer/ as `shard` (the sharded layout of a
// data-parallel run with ZeRO stage 2).
std::string save_as_shard(const std::string& out, const std::string& shard) {
  const std::string dir = save(out, 5);
  fs::create_directories(dir + "/optimizer");
  fs::rename(dir + "/optimizer.safetensors", dir + "/optimizer/" + shard);
  return dir;
}

std::string load_error(const std::string& dir) {
  try {
    load_train_checkpoint(dir);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(TrainCheckpoint, ShardedOptimizerStateIsReadByParameterName) {
  testing::TempDir out;
  const std::string dir = save_as_shard(out.path(), "shard-00000-of-00001.safetensors");
  const LoadedTrainCheckpoint ckpt = load_train_checkpoint(dir);
  ASSERT_EQ(ckpt.optimizer_files.size(), 1u);
  const NamedTensors mine = optimizer_state_for(ckpt, {"lora_A"});
  ASSERT_EQ(mine.size(), 2u);  // exp_avg/lora_A and step/lora_A
  EXPECT_TRUE(torch::equal(mine[0].second, some_tensors(5).optimizer[0].second));
  EXPECT_TRUE(optimizer_state_for(ckpt, {"lora_B"}).empty());
}

TEST(TrainCheckpoint, MissingOrMisnamedShardsAreErrorsNamingThem) {
  testing::TempDir a, b, c;
  const std::string two = save_as_shard(a.path(), "shard-00000-of-00002.safetensors");
  EXPECT_NE(load_error(two).find("holds 1 optimizer shards, expected 2"), std::string::npos)
      << load_error(two);
  const std::string odd = save_as_shard(b.path(), "rank0.safetensors");
  EXPECT_NE(load_error(odd).find("rank0.safetensors: expected optimizer shard 0"),
            std::string::npos)
      << load_error(odd);
  const std::string none = save(c.path(), 5);
  fs::remove(none + "/optimizer.safetensors");
  EXPECT_NE(load_error(none).find("optimizer.safetensors: missing (and no optimizer/ shards)"),
            std::string::npos)
      << load_error(none);
}

TEST(TrainCheckpoint, AdamWStateRoundTripsThroughACheckpoint) {
  testing::TempDir out;
  torch::Tensor w = torch::ones({2, 2}, torch::kBFloat16).set_requires_grad(true);
  AdamW opt({{"w", w}});
  w.mutable_grad() = torch::full({2, 2}, 0.5f, torch::kBFloat16);
  opt.step(1e-3);
  const std::string dir =
      save_train_checkpoint(out.path(), state_at(1), {{"w", w}}, opt.state_tensors());

  torch::Tensor w2 = torch::ones({2, 2}, torch::kBFloat16).set_requires_grad(true);
  AdamW opt2({{"w", w2}});
  opt2.load_state(load_train_checkpoint(dir).optimizer);
  EXPECT_TRUE(torch::equal(opt2.master("w"), opt.master("w")));
  EXPECT_EQ(opt2.step_count("w"), 1);
}

TEST(TrainCheckpoint, KeepLastDeletesOlderOnesAfterANewOneIsComplete) {
  testing::TempDir out;
  for (int64_t step : {10, 20, 30, 40})
    save(out.path(), step, /*keep_last=*/2);
  const auto all = list_checkpoints(out.path());
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].first, 30);
  EXPECT_EQ(all[1].first, 40);
  EXPECT_EQ(entries(out.path() + "/checkpoints"),
            (std::vector<std::string>{"step-00000030", "step-00000040"}));
  // keep_last <= 0 keeps everything.
  save(out.path(), 50, 0);
  EXPECT_EQ(list_checkpoints(out.path()).size(), 3u);
}

TEST(TrainCheckpoint, PartialDirectoriesAreIgnoredAndCleaned) {
  testing::TempDir out;
  save(out.path(), 10);
  // A run killed while writing step 20 leaves step-00000020.partial behind.
  const std::string partial = out.path() + "/checkpoints/step-00000020.partial";
  fs::create_directories(partial);
  testing::write_text(partial + "/trainer_state.json", "{\"step\": 2");
  EXPECT_EQ(find_latest_checkpoint(out.path()), out.path() + "/checkpoints/step-00000010");
  EXPECT_EQ(list_checkpoints(out.path()).size(), 1u);
  save(out.path(), 20);
  EXPECT_FALSE(fs::exists(partial));
  EXPECT_EQ(find_latest_checkpoint(out.path()), out.path() + "/checkpoints/step-00000020");
  EXPECT_EQ(load_train_checkpoint(*find_latest_checkpoint(out.path())).state.step, 20);
}

TEST(TrainCheckpoint, NoCheckpointYet) {
  testing::TempDir out;
  EXPECT_FALSE(find_latest_checkpoint(out.path()).has_value());
  fs::create_directories(out.path() + "/checkpoints/notes");
  EXPECT_FALSE(find_latest_checkpoint(out.path()).has_value());
}

TEST(TrainCheckpoint, SavingTheSameStepAgainReplacesIt) {
  testing::TempDir out;
  save(out.path(), 5);
  const Saved s = some_tensors(99);
  const std::string dir = save_train_checkpoint(out.path(), state_at(5), s.weights, s.optimizer);
  EXPECT_TRUE(
      torch::equal(load_train_checkpoint(dir).weights.get("lora_A", torch::kFloat32, torch::kCPU),
                   s.weights[0].second));
  EXPECT_EQ(entries(out.path() + "/checkpoints"), std::vector<std::string>{"step-00000005"});
}

void expect_input_error_naming(const std::string& dir, const std::string& file,
                               const std::string& detail) {
  try {
    load_train_checkpoint(dir);
    ADD_FAILURE() << "expected InputError mentioning " << detail;
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(file), std::string::npos) << message;
    EXPECT_NE(message.find(detail), std::string::npos) << message;
  }
}

TEST(TrainCheckpoint, MalformedCheckpointsThrowInputErrorNamingTheFile) {
  testing::TempDir out;
  const std::string dir = save(out.path(), 3);
  const std::string state_path = dir + "/trainer_state.json";
  const std::string good = read_file(state_path);
  auto json = nlohmann::json::parse(good);

  testing::write_text(state_path, good.substr(0, good.size() / 2));  // truncated
  expect_input_error_naming(dir, state_path, "not valid JSON");

  auto broken = json;
  broken["step"] = 4;
  testing::write_text(state_path, broken.dump());
  expect_input_error_naming(dir, state_path, "directory is for step 3");

  broken = json;
  broken["epoch"] = "one";
  testing::write_text(state_path, broken.dump());
  expect_input_error_naming(dir, state_path, "\"epoch\"");

  broken = json;
  broken.erase("rng");
  testing::write_text(state_path, broken.dump());
  expect_input_error_naming(dir, state_path, "missing field \"rng\"");

  broken = json;
  broken["rng"]["cpu"] = "not base64!";
  testing::write_text(state_path, broken.dump());
  expect_input_error_naming(dir, state_path, "rng.cpu");

  broken = json;
  broken["extra"] = 1;
  testing::write_text(state_path, broken.dump());
  expect_input_error_naming(dir, state_path, "unknown field \"extra\"");

  testing::write_text(state_path, good);
  EXPECT_NO_THROW(load_train_checkpoint(dir));
  testing::write_text(dir + "/optimizer.safetensors", "garbage");
  expect_input_error_naming(dir, dir + "/optimizer.safetensors", "");
  fs::remove(dir + "/optimizer.safetensors");
  expect_input_error_naming(dir, dir + "/optimizer.safetensors", "missing");
}

TEST(TrainCheckpoint, RngStateIsRestored) {
  testing::TempDir out;
  torch::manual_seed(1234);
  torch::rand({5});  // advance the generator somewhere arbitrary
  const std::string dir = save(out.path(), 1);
  const torch::Tensor after_save = torch::rand({8});
  torch::rand({100});  // the run goes on, then dies

  torch::manual_seed(999);  // a fresh process seeds differently
  const LoadedTrainCheckpoint ckpt = load_train_checkpoint(dir);
  restore_rng_state(ckpt.state.rng, ckpt.state_path);
  EXPECT_TRUE(torch::equal(torch::rand({8}), after_save));
  EXPECT_EQ(ckpt.state.rng["cuda"].size(),
            static_cast<size_t>(torch::cuda::is_available() ? torch::cuda::device_count() : 0));
}

TEST(RngState, Base64RoundTripAndRejectsGarbage) {
  for (size_t n : {0, 1, 2, 3, 4, 5, 255}) {
    std::vector<uint8_t> bytes(n);
    for (size_t i = 0; i < n; ++i)
      bytes[i] = static_cast<uint8_t>(i * 37 + 11);
    EXPECT_EQ(base64_decode(base64_encode(bytes), "t"), bytes) << n;
  }
  EXPECT_EQ(base64_encode({'M', 'a'}), "TWE=");  // RFC 4648 example
  EXPECT_THROW(base64_decode("TWE", "t"), InputError);
  EXPECT_THROW(base64_decode("T=E=", "t"), InputError);
  EXPECT_THROW(base64_decode("TW*=", "t"), InputError);
  EXPECT_THROW(restore_rng_state({{"cpu", "AAAA"}, {"cuda", nlohmann::json::array()}}, "x.json"),
               InputError);  // 3 bytes is no generator state
}

}  // namespace
}  // namespace align
