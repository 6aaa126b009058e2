#include "model/logprobs.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "model/init.h"
#include "tests/model/model_test_util.h"

namespace align {
namespace {

using testing::max_abs_diff;
using testing::random_tokens;
using testing::token_row;

TEST(Logprobs, ChunkedEqualsUnchunked) {
  torch::NoGradGuard no_grad;
  const Phi3Model model =
      Phi3Model::load(testing::golden_model_dir("mini_tiny"), torch::kFloat, torch::kCPU);
  const int64_t V = model.config().vocab_size;
  auto tokens =
      torch::cat({token_row(random_tokens(45, V, 1)), token_row(random_tokens(45, V, 2))});
  LogprobOptions whole;
  whole.chunk_tokens = 1 << 20;
  auto expected = token_logprobs(model, tokens, whole);
  ASSERT_EQ(expected.sizes(), (std::vector<int64_t>{2, 45}));
  EXPECT_EQ(expected.select(1, 0).abs().max().item<float>(), 0.0f);
  // Only the lm_head GEMM's shape changes; its fp32 sums may round differently (a few ulps of ~10).
  for (int64_t chunk : {1, 7, 88}) {
    LogprobOptions opt;
    opt.chunk_tokens = chunk;
    EXPECT_LT(max_abs_diff(token_logprobs(model, tokens, opt), expected), 2e-5) << chunk;
  }
}

TEST(Logprobs, EqualTheLogSoftmaxOfTheFullLogits) {
  torch::NoGradGuard no_grad;
  const Phi3Model model =
      Phi3Model::load(testing::golden_model_dir("phi4_tiny"), torch::kBFloat16, torch::kCPU);
  const auto ids = random_tokens(17, model.config().vocab_size, 5);
  auto logp = torch::log_softmax(testing::full_logits(model, ids), -1);  // [T, V]
  auto got = token_logprobs(model, token_row(ids))[0];
  for (size_t i = 1; i < ids.size(); ++i) {
    EXPECT_FLOAT_EQ(got[static_cast<int64_t>(i)].item<float>(),
                    logp[static_cast<int64_t>(i) - 1][ids[i]].item<float>());
  }
}

TEST(Logprobs, PackedSegmentsScoreEachSequenceOnItsOwn) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = random_model(model_preset("tiny"), 3, torch::kFloat);
  const int64_t V = model.config().vocab_size;
  const auto a = random_tokens(6, V, 8), b = random_tokens(9, V, 9);
  std::vector<int64_t> packed = a, positions, segments;
  packed.insert(packed.end(), b.begin(), b.end());
  for (int64_t i = 0; i < 6; ++i)
    positions.push_back(i);
  for (int64_t i = 0; i < 9; ++i)
    positions.push_back(i);
  segments.assign(6, 0);
  segments.insert(segments.end(), 9, 1);
  LogprobOptions opt;
  opt.positions = token_row(positions);
  opt.segments = token_row(segments);
  auto got = token_logprobs(model, token_row(packed), opt)[0];
  auto la = token_logprobs(model, token_row(a))[0];
  auto lb = token_logprobs(model, token_row(b))[0];
  EXPECT_LT(max_abs_diff(got.narrow(0, 0, 6), la), 1e-5);
  EXPECT_LT(max_abs_diff(got.narrow(0, 6, 9), lb), 1e-5);  // includes the 0 at b's first token
}

TEST(Logprobs, SingleTokenAndBadChunk) {
  const Phi3Model model = random_model(model_preset("tiny"), 3, torch::kFloat);
  auto lp = token_logprobs(model, token_row({5}));
  EXPECT_EQ(lp.sizes(), (std::vector<int64_t>{1, 1}));
  LogprobOptions opt;
  opt.chunk_tokens = 0;
  EXPECT_THROW(token_logprobs(model, token_row({5, 6}), opt), InputError);
}

}  // namespace
}  // namespace align
