// Decode steps on the persistent bucket buffers (rollout/decode_graphs.h), run eagerly on the
// CPU: the same tokens and log-probs as the engine without them, for greedy and sampled requests
// whose decode batches are padded (3, 5 and 6 live rows in buckets of 4 and 8), on Phi-4- and
// longrope Phi-4-mini-shaped golden models, across generate() calls that reuse the buffers; and
// the steps the buffers must not take (prefill, the shared-prefix form). Capture itself needs a
// GPU: tests/rollout/paged_forward_gpu_test.cc.
#include <gtest/gtest.h>

#include "common/error.h"
#include "rollout/engine.h"
#include "tests/model/model_test_util.h"
#include "tests/rollout/engine_test_util.h"

namespace align {
namespace {

using testing::expect_same;
using testing::random_tokens;
using testing::small_pages;

std::vector<GenerationRequest> requests(int64_t vocab, int64_t prompt_len) {
  std::vector<GenerationRequest> out;
  for (int64_t r = 0; r < 3; ++r) {
    GenerationRequest q;
    const auto ids = random_tokens(prompt_len + r % 2, vocab, 40 + static_cast<uint64_t>(r));
    q.prompt.assign(ids.begin(), ids.end());
    q.num_samples = 1 + r;  // 1 + 2 + 3 live rows while all run, fewer as they finish
    q.max_new_tokens = 6 + 3 * r;
    q.sampling.temperature = r == 0 ? 0 : 0.9;
    q.sampling.seed = 7 + static_cast<uint64_t>(r);
    out.push_back(q);
  }
  return out;
}

class DecodeBucketsTest : public ::testing::TestWithParam<std::string> {};

TEST_P(DecodeBucketsTest, SameTokensAndLogprobsAsWithout) {
  const Phi3Model model =
      Phi3Model::load(testing::golden_model_dir(GetParam()), torch::kFloat, torch::kCPU);
  // Prompts shorter than a page: forks share no full page, so every decode step is one the
  // buffers serve.
  const auto reqs = requests(model.config().vocab_size, 2);
  EngineOptions plain = small_pages(/*reuse=*/false);
  EngineOptions bucketed = plain;
  bucketed.decode_buckets = true;
  Engine want_engine(model, nullptr, plain);
  Engine got_engine(model, nullptr, bucketed);
  const auto want = want_engine.generate(reqs);
  const auto got = got_engine.generate(reqs);
  expect_same(got, want, 1e-5);
  EXPECT_EQ(want_engine.bucketed_steps(), 0);
  const int64_t first = got_engine.bucketed_steps();
  EXPECT_GT(first, 0);
  EXPECT_EQ(got_engine.graphs_captured(), 0) << "no capture on the CPU";
  // Every step but the prefill ones: each sample's first token comes from a prefill step.
  EXPECT_GE(first, got_engine.stats().steps - 3);
  // A second call runs on the same buffers (their padding rows now cover an earlier call's
  // rows) and gives the same samples.
  expect_same(got_engine.generate(reqs), want, 1e-5);
  EXPECT_GT(got_engine.bucketed_steps(), first);
}

INSTANTIATE_TEST_SUITE_P(Golden, DecodeBucketsTest, ::testing::Values("phi4_tiny", "mini_tiny"));

TEST(DecodeBuckets, SharedPrefixStepsStayEager) {
  const Phi3Model model =
      Phi3Model::load(testing::golden_model_dir("phi4_tiny"), torch::kFloat, torch::kCPU);
  // 9-token prompts span two full pages of 4 that the samples share: the CPU reads them in the
  // shared-prefix form, which the buckets do not take.
  GenerationRequest q;
  const auto ids = random_tokens(9, model.config().vocab_size, 3);
  q.prompt.assign(ids.begin(), ids.end());
  q.num_samples = 3;
  q.max_new_tokens = 4;
  q.sampling.temperature = 0;
  EngineOptions o = small_pages(false);
  o.decode_buckets = true;
  Engine engine(model, nullptr, o);
  const auto got = engine.generate({q});
  EXPECT_EQ(engine.bucketed_steps(), 0);
  o.decode_buckets = false;
  Engine plain(model, nullptr, o);
  expect_same(got, plain.generate({q}), 0);
}

TEST(DecodeBuckets, CudaGraphsNeedACudaModel) {
  const Phi3Model model =
      Phi3Model::load(testing::golden_model_dir("phi4_tiny"), torch::kFloat, torch::kCPU);
  EngineOptions o = small_pages();
  o.cuda_graphs = true;
  try {
    Engine engine(model, nullptr, o);
    FAIL() << "a CPU model with cuda_graphs was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("cuda_graphs"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace align
