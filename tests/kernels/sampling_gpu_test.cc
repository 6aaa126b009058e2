// GPU test: the sampling kernel and the log-prob gather against the CPU reference (rollout/
// sampler.h) over awkward shapes, mixed per-row parameters, exact ties and strided rows. Skipped
// (with a message) when no GPU is present.
//
// Tokens must be identical. The kernel sums fixed-point weights and the reference fp64 sums of
// fp32 weights, so they could differ only if some u * total fell within ~1e-7 (relative) of a
// cumulative-weight boundary; the data below are fixed by seeds, so a failure is a real bug or a
// reproducible near-boundary draw (check the printed row), never a flake.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "kernels/sampling_op.h"
#include "tests/gpu_test_util.h"

namespace align {
namespace {

#define REQUIRE_GPU() REQUIRE_GPU_WITH(cuda_kernels_built())

std::vector<SamplingParams> mixed_params(int64_t rows) {
  // {temperature, top_k, top_p, min_p}
  const std::vector<std::vector<double>> configs = {
      {0, 0, 1, 0},    {1, 0, 1, 0},          {0.7, 5, 1, 0},    {1.2, 0, 0.9, 0},
      {1, 0, 1, 0.1},  {0.8, 50, 0.95, 0.02}, {1, 1, 1, 0},      {0.5, 0, 0.77, 0},
      {1e-3, 0, 1, 0}, {2, 3, 0.6, 0},        {1, 100000, 1, 0}, {0.9, 2, 0.99, 0.3}};
  std::vector<SamplingParams> params;
  for (int64_t b = 0; b < rows; ++b) {
    const std::vector<double>& c = configs[static_cast<size_t>(b) % configs.size()];
    SamplingParams p;
    p.temperature = c[0];
    p.top_k = static_cast<int64_t>(c[1]);
    p.top_p = c[2];
    p.min_p = c[3];
    p.seed = 1000 + static_cast<uint64_t>(b);
    params.push_back(p);
  }
  return params;
}

std::vector<int64_t> steps_for(int64_t rows) {
  std::vector<int64_t> steps;
  for (int64_t b = 0; b < rows; ++b)
    steps.push_back(3 * b + 7);
  return steps;
}

void expect_matches_reference(const torch::Tensor& logits,
                              const std::vector<SamplingParams>& params,
                              const std::vector<int64_t>& steps, const std::string& what) {
  const SampleResult got = sample(logits, params, steps);
  ASSERT_TRUE(got.tokens.is_cuda()) << what;
  ASSERT_EQ(got.tokens.scalar_type(), torch::kInt64) << what;
  ASSERT_EQ(got.logprobs.scalar_type(), torch::kFloat32) << what;
  const torch::Tensor cpu_logits = logits.cpu();
  const SampleResult want = sample_reference(cpu_logits, params, steps);
  const torch::Tensor tokens = got.tokens.cpu();
  for (int64_t b = 0; b < tokens.size(0); ++b) {
    EXPECT_EQ(tokens[b].item<int64_t>(), want.tokens[b].item<int64_t>())
        << what << " row " << b << " T " << params[static_cast<size_t>(b)].temperature << " k "
        << params[static_cast<size_t>(b)].top_k << " p " << params[static_cast<size_t>(b)].top_p
        << " min_p " << params[static_cast<size_t>(b)].min_p;
  }
  // Log-probs of the tokens the kernel drew, against the fp32 LibTorch log_softmax.
  const torch::Tensor ref_logprobs = gather_logprobs_reference(cpu_logits, tokens);
  const double err = (got.logprobs.cpu() - ref_logprobs).abs().max().item<double>();
  EXPECT_LE(err, 1e-5) << what;
  // Deterministic run to run.
  EXPECT_TRUE(torch::equal(sample(logits, params, steps).tokens, got.tokens)) << what;
}

TEST(SamplingKernel, MatchesReferenceOverShapes) {
  REQUIRE_GPU();
  torch::manual_seed(0);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA);
  for (int64_t rows : {1, 19, 64}) {
    for (int64_t vocab : {7, 1000, 100352}) {
      const std::vector<SamplingParams> params = mixed_params(rows);
      const std::vector<int64_t> steps = steps_for(rows);
      const std::string shape = "B " + std::to_string(rows) + " V " + std::to_string(vocab);
      expect_matches_reference(torch::randn({rows, vocab}, opts) * 3, params, steps,
                               shape + " randn");
      // Half-integer logits: many exact ties at every threshold.
      expect_matches_reference((torch::randn({rows, vocab}, opts) * 2).round() / 2, params, steps,
                               shape + " ties");
    }
  }
}

TEST(SamplingKernel, StridedRowsAndOtherDtypes) {
  REQUIRE_GPU();
  torch::manual_seed(1);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA);
  const torch::Tensor wide = torch::randn({19, 1200}, opts) * 2;
  const torch::Tensor logits = wide.narrow(1, 100, 1000);  // rows 1200 elements apart
  expect_matches_reference(logits, mixed_params(19), steps_for(19), "strided");
  // bf16 logits are converted to fp32 first.
  const torch::Tensor bf16 = logits.to(torch::kBFloat16);
  const SampleResult got = sample(bf16, mixed_params(19), steps_for(19));
  const SampleResult want = sample_reference(bf16.cpu(), mixed_params(19), steps_for(19));
  EXPECT_TRUE(torch::equal(got.tokens.cpu(), want.tokens));
}

TEST(SamplingKernel, GatherLogprobsMatchesReference) {
  REQUIRE_GPU();
  torch::manual_seed(2);
  const auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(torch::kCUDA);
  for (int64_t rows : {1, 19, 64}) {
    for (int64_t vocab : {7, 1000, 100352}) {
      const torch::Tensor logits = torch::randn({rows, vocab}, opts) * 3;
      const torch::Tensor tokens = torch::randint(vocab, {rows}, opts.dtype(torch::kInt64));
      const torch::Tensor got = gather_logprobs(logits, tokens);
      ASSERT_TRUE(got.is_cuda());
      const torch::Tensor want = gather_logprobs_reference(logits.cpu(), tokens.cpu());
      EXPECT_LE((got.cpu() - want).abs().max().item<double>(), 1e-5)
          << "B " << rows << " V " << vocab;
    }
  }
  const torch::Tensor logits = torch::randn({2, 8}, opts);
  EXPECT_ANY_THROW(gather_logprobs(logits, torch::zeros({3}, opts.dtype(torch::kInt64))));
  EXPECT_ANY_THROW(gather_logprobs(logits, torch::zeros({2}, opts.dtype(torch::kInt32))));
}

}  // namespace
}  // namespace align
