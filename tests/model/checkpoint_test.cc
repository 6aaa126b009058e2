// Hugging Face checkpoint directories: single-file and sharded save/load, zero-copy mapping, and
// the loader's report of missing, unexpected and misshaped tensors.
#include "model/checkpoint.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tests/test_util.h"

namespace align {
namespace {
namespace fs = std::filesystem;

std::vector<std::pair<std::string, torch::Tensor>> sample_tensors() {
  torch::manual_seed(0);
  return {{"model.embed_tokens.weight", torch::randn({10, 4})},
          {"model.norm.weight", torch::randn({4}).to(torch::kBFloat16)},
          {"lm_head.weight", torch::randn({10, 4}).to(torch::kFloat16)},
          {"step", torch::tensor(7, torch::kInt64)}};
}

void expect_error_mentions(const std::function<void()>& fn,
                           const std::vector<std::string>& fragments) {
  try {
    fn();
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    for (const auto& f : fragments) {
      EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
    }
  }
}

TEST(Checkpoint, SingleFileRoundTripInEveryDtype) {
  testing::TempDir dir;
  auto tensors = sample_tensors();
  save_checkpoint(dir.path(), tensors);
  EXPECT_TRUE(fs::exists(dir.file("model.safetensors")));
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors.index.json")));
  Checkpoint ckpt = Checkpoint::open(dir.path());
  ASSERT_EQ(ckpt.names().size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    torch::Tensor got = ckpt.get(name, t.scalar_type(), torch::kCPU);
    EXPECT_EQ(got.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(got, t)) << name;
  }
  // Stored bf16 read as fp32 is an exact widening.
  torch::Tensor widened = ckpt.get("model.norm.weight", torch::kFloat32, torch::kCPU);
  EXPECT_TRUE(torch::equal(widened, tensors[1].second.to(torch::kFloat32)));
}

TEST(Checkpoint, AlignedSameDtypeLoadIsZeroCopy) {
  testing::TempDir dir;
  save_checkpoint(dir.path(), sample_tensors());
  Checkpoint ckpt = Checkpoint::open(dir.path());
  torch::Tensor t = ckpt.get("model.embed_tokens.weight", torch::kFloat32, torch::kCPU);
  EXPECT_EQ(t.data_ptr(), static_cast<const void*>(ckpt.view("model.embed_tokens.weight").data));
  // Writing through the private mapping must not change the file.
  t.fill_(0);
  Checkpoint again = Checkpoint::open(dir.path());
  EXPECT_FALSE(torch::equal(again.get("model.embed_tokens.weight", torch::kFloat32, torch::kCPU),
                            torch::zeros({10, 4})));
}

TEST(Checkpoint, UnalignedDataIsCopiedCorrectly) {
  testing::TempDir dir;
  // Header of odd length: the data buffer starts at an odd address.
  std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )";
  if (header.size() % 2 == 0) header += " ";
  float values[2] = {1.5f, -2.25f};
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  bytes += header + std::string(reinterpret_cast<const char*>(values), 8);
  testing::write_text(dir.file("odd.safetensors"), bytes);
  Checkpoint ckpt = Checkpoint::open(dir.file("odd.safetensors"));
  torch::Tensor t = ckpt.get("w", torch::kFloat32, torch::kCPU);
  EXPECT_TRUE(torch::equal(t, torch::tensor({1.5f, -2.25f})));
}

TEST(Checkpoint, ShardedRoundTripWritesHuggingFaceIndex) {
  testing::TempDir dir;
  auto tensors = sample_tensors();
  save_checkpoint(dir.path(), tensors, /*max_shard_bytes=*/90);
  // 160 + 8 + 80 + 8 bytes with a 90-byte budget: greedy shards [embed], [norm, lm_head], [step]
  // -- norm (8) + lm_head (80) fit together, step would push past 90.
  EXPECT_TRUE(fs::exists(dir.file("model-00001-of-00003.safetensors")));
  EXPECT_TRUE(fs::exists(dir.file("model-00003-of-00003.safetensors")));
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors")));
  auto index = nlohmann::json::parse(read_file(dir.file("model.safetensors.index.json")));
  EXPECT_EQ(index["metadata"]["total_size"].get<int64_t>(), 160 + 8 + 80 + 8);
  EXPECT_EQ(index["weight_map"]["lm_head.weight"], "model-00002-of-00003.safetensors");
  Checkpoint ckpt = Checkpoint::open(dir.path());
  for (const auto& [name, t] : tensors) {
    EXPECT_TRUE(torch::equal(ckpt.get(name, t.scalar_type(), torch::kCPU), t)) << name;
  }
}

TEST(Checkpoint, ResavingWithAnotherLayoutRemovesStaleShards) {
  testing::TempDir dir;
  save_checkpoint(dir.path(), sample_tensors(), 90);
  save_checkpoint(dir.path(), sample_tensors());
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors.index.json")));
  EXPECT_FALSE(fs::exists(dir.file("model-00001-of-00003.safetensors")));
  EXPECT_EQ(Checkpoint::open(dir.path()).names().size(), 4u);
}

TEST(Checkpoint, LazyProducersAreCheckedForShape) {
  testing::TempDir dir;
  std::vector<TensorToSave> list = {
      {"w", {2, 2}, torch::kFloat32, [] { return torch::zeros({3}); }}};
  EXPECT_THROW(save_checkpoint(dir.path(), list), Error);
  EXPECT_FALSE(fs::exists(dir.file("model.safetensors")));
}

TEST(Checkpoint, CheckListsMissingUnexpectedAndMisshapedTensors) {
  testing::TempDir dir;
  save_checkpoint(dir.path(), sample_tensors());
  Checkpoint ckpt = Checkpoint::open(dir.path());
  TensorShapes expected = {{"model.embed_tokens.weight", {10, 4}},
                           {"model.norm.weight", {5}},
                           {"lm_head.weight", {10, 4}},
                           {"model.layers.0.mlp.down_proj.weight", {4, 8}}};
  expect_error_mentions(
      [&] { ckpt.check(expected); },
      {"1 missing tensors", "model.layers.0.mlp.down_proj.weight",
       "model.norm.weight (expected [5], found [4])", "1 unexpected tensors", "step"});
  expected[1].second = {4};
  expected.pop_back();
  expected.push_back({"step", {}});
  EXPECT_NO_THROW(ckpt.check(expected));
}

TEST(Checkpoint, BrokenDirectoriesAndIndexes) {
  testing::TempDir dir;
  expect_error_mentions([&] { Checkpoint::open(dir.path()); }, {"no model.safetensors"});
  expect_error_mentions([&] { Checkpoint::open(dir.file("nope")); }, {"no such file"});

  save_checkpoint(dir.path(), sample_tensors(), 90);
  const std::string index_path = dir.file("model.safetensors.index.json");
  auto index = nlohmann::json::parse(read_file(index_path));

  auto missing_shard = index;
  missing_shard["weight_map"]["step"] = "model-00009-of-00009.safetensors";
  testing::write_text(index_path, missing_shard.dump());
  expect_error_mentions([&] { Checkpoint::open(dir.path()); },
                        {index_path, "model-00009-of-00009.safetensors", "missing"});

  auto wrong_shard = index;
  wrong_shard["weight_map"]["step"] = "model-00001-of-00003.safetensors";
  testing::write_text(index_path, wrong_shard.dump());
  expect_error_mentions([&] { Checkpoint::open(dir.path()); },
                        {"places tensor 'step'", "does not contain it"});

  auto unlisted = index;
  unlisted["weight_map"].erase("model.norm.weight");  // its shard is still listed for lm_head
  testing::write_text(index_path, unlisted.dump());
  expect_error_mentions([&] { Checkpoint::open(dir.path()); },
                        {"holds tensor 'model.norm.weight'", "does not list"});

  testing::write_text(index_path, "{\"weight_map\": [");
  expect_error_mentions([&] { Checkpoint::open(dir.path()); }, {index_path, "not valid JSON"});
}

}  // namespace
}  // namespace align
