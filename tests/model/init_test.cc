#include "model/init.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "model/logprobs.h"
#include "tests/model/model_test_util.h"

namespace align {
namespace {

TEST(Init, TensorListFollowsTheConfig) {
  const ModelConfig phi4 = model_preset("phi-4");
  auto tensors = random_init_tensors(phi4, 1);  // nothing is produced
  ASSERT_EQ(tensors.size(), 243u);
  auto shapes = model_tensor_shapes(phi4);
  int64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(tensors[i].name, shapes[i].first);
    EXPECT_EQ(tensors[i].shape, shapes[i].second);
    EXPECT_EQ(tensors[i].dtype, torch::kBFloat16);
    int64_t n = 1;
    for (int64_t d : tensors[i].shape)
      n *= d;
    total += n;
  }
  EXPECT_EQ(total, phi4.num_parameters());
  EXPECT_EQ(tensors.front().name, "model.embed_tokens.weight");
  EXPECT_EQ(tensors.back().name, "lm_head.weight");
  EXPECT_EQ(tensors[2].name, "model.layers.0.self_attn.qkv_proj.weight");
  EXPECT_EQ(tensors[2].shape, (std::vector<int64_t>{7680, 5120}));

  const auto mini = random_init_tensors(model_preset("phi-4-mini"), 1);
  EXPECT_EQ(mini.back().name, "model.norm.weight");  // tied: no lm_head
}

TEST(Init, DeterministicPerSeedAndIndependentOfOrder) {
  const ModelConfig tiny = model_preset("tiny");
  auto a = random_init_tensors(tiny, 42, torch::kFloat);
  auto b = random_init_tensors(tiny, 42, torch::kFloat);
  auto c = random_init_tensors(tiny, 43, torch::kFloat);
  // Produce b in reverse order: each tensor has its own generator.
  std::vector<torch::Tensor> b_values(b.size());
  for (size_t i = b.size(); i-- > 0;)
    b_values[i] = b[i].produce();
  for (size_t i = 0; i < a.size(); ++i) {
    auto x = a[i].produce();
    EXPECT_TRUE(torch::equal(x, b_values[i])) << a[i].name;
    EXPECT_EQ(x.sizes(), torch::IntArrayRef(a[i].shape)) << a[i].name;
    if (x.numel() > 1000) {
      EXPECT_FALSE(torch::equal(x, c[i].produce())) << a[i].name;
    }
  }
  // bf16 is the rounded fp32 draw.
  auto bf = random_init_tensors(tiny, 42, torch::kBFloat16);
  EXPECT_TRUE(torch::equal(bf[1].produce(), a[1].produce().to(torch::kBFloat16)));
  EXPECT_TRUE(torch::equal(bf[2].produce(), a[2].produce().to(torch::kBFloat16)));
}

TEST(Init, StatisticsFollowHuggingFace) {
  ModelConfig config = model_preset("tiny");
  config.initializer_range = 0.05;
  for (const auto& t : random_init_tensors(config, 7, torch::kFloat)) {
    auto x = t.produce();
    if (t.name.find("norm") != std::string::npos) {
      EXPECT_TRUE(torch::equal(x, torch::ones_like(x))) << t.name;
      continue;
    }
    if (t.name == "model.embed_tokens.weight") {
      EXPECT_EQ(x[*config.pad_token_id].abs().sum().item<float>(), 0.0f);
      x = torch::cat({x.narrow(0, 0, *config.pad_token_id),
                      x.narrow(0, *config.pad_token_id + 1, x.size(0) - *config.pad_token_id - 1)});
    }
    const double n = static_cast<double>(x.numel());
    EXPECT_NEAR(x.mean().item<double>(), 0.0, 4 * 0.05 / std::sqrt(n)) << t.name;
    EXPECT_NEAR(x.std().item<double>(), 0.05, 0.05 * 4 / std::sqrt(n) + 1e-3) << t.name;
  }
}

TEST(Init, WrittenModelLoadsAndMatchesTheInMemoryOne) {
  torch::NoGradGuard no_grad;
  testing::TempDir dir;
  ModelConfig config = model_preset("tiny");
  write_random_model(dir.path(), config, 9, torch::kBFloat16, /*max_shard_bytes=*/200'000);
  EXPECT_TRUE(std::filesystem::exists(dir.file("model.safetensors.index.json")));
  const Phi3Model loaded = Phi3Model::load(dir.path(), torch::kFloat, torch::kCPU);
  const Phi3Model memory = random_model(config, 9, torch::kBFloat16).to(torch::kFloat, torch::kCPU);
  EXPECT_EQ(loaded.config().dtype, "bfloat16");
  auto a = named_weights(loaded.config(), loaded.weights());
  auto b = named_weights(memory.config(), memory.weights());
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
  auto lp = token_logprobs(loaded, testing::token_row(testing::random_tokens(12, 512, 1)));
  EXPECT_TRUE(torch::isfinite(lp).all().item<bool>());
  // A random model predicts close to uniformly: log(1/512) = -6.24.
  EXPECT_NEAR(lp.narrow(1, 1, 11).mean().item<double>(), -std::log(512.0), 0.5);
}

}  // namespace
}  // namespace align
