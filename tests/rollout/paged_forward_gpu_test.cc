// GPU test: paged_forward with the fused kernels on CUDA (the element-wise ops' own dispatch, and
// the decode rows' paged attention: rollout/paged_forward_attention.h) against the CPU, on small
// random models whose head dims have a compiled attention kernel (64, 128 with partial rotary and a
// sliding window) and one whose head dim does not (16, where the decode-attention op takes its own
// reference), and a longrope one (Phi-4-mini's partial rotary, switch at 12 tokens: the schedule
// runs long-factor sequences, the engine's prompts cross the switch while decoding or start past
// it). Prefill chunks, a fork sharing pages (copy-on-write), mixed prefill + decode steps and
// several decode steps; then the engine's greedy tokens and log-probs. Skipped (with a message)
// when no GPU is present.
//
// Tolerances are tied to the dtype: fp32 logits within 1e-4 of the largest |logit| (the two
// devices differ only in accumulation order); bf16 logits must be within 2x the CPU bf16 run's own
// error against the fp32 CPU run (FlashAttention's rule), plus a small floor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/kernel_support.h"
#include "kernels/paged_attention.h"
#include "model/config.h"
#include "model/init.h"
#include "rollout/engine.h"
#include "rollout/paged_forward.h"
#include "rollout/paged_forward_attention.h"
#include "tests/gpu_test_util.h"

namespace align {
namespace {

#define REQUIRE_GPU() REQUIRE_GPU_WITH(cuda_kernels_built())

ModelConfig config_named(const std::string& name) {
  ModelConfig c = model_preset("tiny");  // D = 16
  if (name == "d64") {
    c.hidden_size = 256;
    c.intermediate_size = 256;
    c.num_heads = 4;
    c.num_kv_heads = 2;
  } else if (name == "d128_partial_window") {
    c.hidden_size = 256;
    c.intermediate_size = 192;
    c.num_heads = 2;
    c.num_kv_heads = 1;
    c.partial_rotary_factor = 0.75;
    c.sliding_window = 6;
    c.tie_word_embeddings = true;
  } else if (name == "d64_longrope") {
    c.hidden_size = 256;
    c.intermediate_size = 256;
    c.num_heads = 4;
    c.num_kv_heads = 2;
    c.partial_rotary_factor = 0.75;  // R = 48: 24 factors per set
    c.rope_type = RopeType::kLongrope;
    c.original_max_position_embeddings = 12;
    c.max_position_embeddings = 64;
    c.short_factor.clear();
    c.long_factor.clear();
    for (int i = 0; i < 24; ++i) {
      c.short_factor.push_back(1.0 + 0.02 * i);
      c.long_factor.push_back(1.0 + 0.5 * i);
    }
  }
  c.initializer_range = 0.1;  // larger logits, fewer near-ties in the greedy comparison
  validate_config(c, "paged_forward_gpu_test " + name);
  return c;
}

std::vector<TokenId> tokens(int64_t n, int64_t vocab, int64_t seed) {
  std::vector<TokenId> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back(static_cast<TokenId>((seed * 7919 + i * 104729 + 13) % vocab));
  return out;
}

// Pages of 4 tokens in a 1,024-token cache: prompts span several, forks share and copy pages.
EngineOptions small_pages() {
  EngineOptions options;
  options.page_size = 4;
  options.kv_budget_tokens = 1024;
  return options;
}

// `count` greedy requests: request r has a prompt of prompt + r * prompt_step tokens (seeded
// seed + r), samples + r * samples_step samples and new_tokens + r * new_step new tokens.
std::vector<GenerationRequest> greedy_requests(int64_t vocab, int64_t count, int64_t prompt,
                                               int64_t prompt_step, int64_t samples,
                                               int64_t samples_step, int64_t new_tokens,
                                               int64_t new_step, int64_t seed) {
  std::vector<GenerationRequest> requests;
  for (int64_t r = 0; r < count; ++r) {
    GenerationRequest q;
    q.prompt = tokens(prompt + prompt_step * r, vocab, seed + r);
    q.num_samples = samples + samples_step * r;
    q.max_new_tokens = new_tokens + new_step * r;
    q.sampling.temperature = 0;
    requests.push_back(q);
  }
  return requests;
}

// Two engines' greedy results on one request list: fp32 tokens equal and log-probs within 1e-3;
// bf16 (greedy choices may legitimately flip at a near-tie) log-probs within 5e-2 up to the first
// differing token.
void expect_engines_agree(const std::vector<std::vector<GeneratedSample>>& got,
                          const std::vector<std::vector<GeneratedSample>>& want,
                          torch::ScalarType dtype) {
  const double tol = dtype == torch::kFloat ? 1e-3 : 5e-2;
  ASSERT_EQ(got.size(), want.size());
  for (size_t r = 0; r < want.size(); ++r) {
    ASSERT_EQ(got[r].size(), want[r].size());
    for (size_t s = 0; s < want[r].size(); ++s) {
      const auto& w = want[r][s];
      const auto& g = got[r][s];
      if (dtype == torch::kFloat) {
        EXPECT_EQ(g.tokens, w.tokens) << "request " << r << "/" << s;
      }
      for (size_t i = 0; i < std::min(w.tokens.size(), g.tokens.size()); ++i) {
        if (g.tokens[i] != w.tokens[i]) break;
        EXPECT_NEAR(g.logprobs[i], w.logprobs[i], tol)
            << c10::toString(dtype) << " request " << r << "/" << s << " token " << i;
      }
    }
  }
}

// A fixed schedule of paged_forward calls; returns the logits of every call on the CPU, in fp32.
std::vector<torch::Tensor> run_schedule(const Phi3Model& model) {
  const ModelConfig& c = model.config();
  const int64_t V = c.vocab_size;
  PagedKvCache cache(c, 64, 4, model.dtype(), model.device());
  std::vector<torch::Tensor> logits;
  auto step = [&](const std::vector<PagedRow>& rows) {
    logits.push_back(paged_forward(model, cache, rows).to(torch::kCPU, torch::kFloat));
  };
  // Longrope: every sequence here grows past the switch, so its keys use the long factors.
  const bool long_rope = c.rope_type == RopeType::kLongrope;
  const int64_t a = cache.create(long_rope), b = cache.create(long_rope),
                d = cache.create(long_rope);
  // Prefill: two chunks of different lengths and a one-token prompt (a decode-shaped row).
  step({{a, tokens(6, V, 1), true}, {b, tokens(9, V, 2), true}, {d, tokens(1, V, 3), true}});
  // Fork a in the middle of a page: both forks append into the shared partial page.
  const int64_t e = cache.fork(a);
  // Mixed: b gets a second prefill chunk while a, d, e decode.
  step({{a, tokens(1, V, 4), true},
        {b, tokens(5, V, 5), false},
        {d, tokens(1, V, 6), true},
        {e, tokens(1, V, 7), true}});
  // Decode steps, batch of 4, past the sliding window and over several pages.
  for (int64_t s = 0; s < 8; ++s) {
    step({{a, tokens(1, V, 10 + s), true},
          {b, tokens(1, V, 20 + s), true},
          {d, tokens(1, V, 30 + s), true},
          {e, tokens(1, V, 40 + s), true}});
  }
  return logits;
}

double max_abs_err(const torch::Tensor& got, const torch::Tensor& want) {
  return (got.to(torch::kDouble) - want.to(torch::kDouble)).abs().max().item<double>();
}

class PagedForwardGpuTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PagedForwardGpuTest, Fp32FusedMatchesCpuReference) {
  REQUIRE_GPU();
  const ModelConfig c = config_named(GetParam());
  const Phi3Model cpu = random_model(c, 7, torch::kFloat);
  const Phi3Model gpu = random_model(c, 7, torch::kFloat, torch::kCUDA);
  EXPECT_TRUE(decode_reads_pages(PagedKvCache(c, 4, 4, torch::kFloat, torch::kCUDA)));
  const auto want = run_schedule(cpu);
  const auto got = run_schedule(gpu);
  ASSERT_EQ(got.size(), want.size());
  for (size_t s = 0; s < want.size(); ++s) {
    const double scale = want[s].abs().max().item<double>();
    EXPECT_LE(max_abs_err(got[s], want[s]), 1e-4 * scale + 1e-5) << GetParam() << " step " << s;
  }
}

TEST_P(PagedForwardGpuTest, Bf16FusedWithinTwiceTheCpuBf16Error) {
  REQUIRE_GPU();
  const ModelConfig c = config_named(GetParam());
  const auto exact = run_schedule(random_model(c, 7, torch::kFloat));
  const auto cpu = run_schedule(random_model(c, 7, torch::kBFloat16));
  const auto gpu = run_schedule(random_model(c, 7, torch::kBFloat16, torch::kCUDA));
  ASSERT_EQ(gpu.size(), exact.size());
  for (size_t s = 0; s < exact.size(); ++s) {
    const double scale = exact[s].abs().max().item<double>();
    const double cpu_err = max_abs_err(cpu[s], exact[s]);
    EXPECT_LE(max_abs_err(gpu[s], exact[s]), 2 * cpu_err + 1e-2 * scale)
        << GetParam() << " step " << s << " (CPU bf16 error " << cpu_err << ")";
  }
}

TEST_P(PagedForwardGpuTest, EngineGreedyTokensAndLogprobsMatchCpu) {
  REQUIRE_GPU();
  const ModelConfig c = config_named(GetParam());
  const EngineOptions options = small_pages();
  const auto requests = greedy_requests(c.vocab_size, 3, 3, 5, 2, 0, 12, 0, 100);
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const Phi3Model cpu_model = random_model(c, 11, dtype);
    const Phi3Model gpu_model = random_model(c, 11, dtype, torch::kCUDA);
    Engine cpu_engine(cpu_model, nullptr, options);
    Engine gpu_engine(gpu_model, nullptr, options);
    const auto want = cpu_engine.generate(requests);
    const auto got = gpu_engine.generate(requests);
    expect_engines_agree(got, want, dtype);
  }
}

// One random GPU model of `c` (seed `seed`) in fp32 and bf16 through an engine with small_pages()
// and one with `variant`: the variant's results, from two generate() calls (the second reuses
// whatever the first built), agree with the plain engine's (expect_engines_agree); then
// check(variant engine).
template <typename Check>
void expect_variant_agrees(const ModelConfig& c, int64_t seed,
                           const std::vector<GenerationRequest>& requests,
                           const EngineOptions& variant, Check check) {
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const Phi3Model model = random_model(c, static_cast<uint64_t>(seed), dtype, torch::kCUDA);
    Engine plain(model, nullptr, small_pages());
    Engine engine(model, nullptr, variant);
    const auto want = plain.generate(requests);
    expect_engines_agree(engine.generate(requests), want, dtype);
    expect_engines_agree(engine.generate(requests), want, dtype);
    check(engine);
  }
}

// The decode step captured as CUDA graphs per bucket (EngineOptions::cuda_graphs,
// rollout/decode_graphs.h) against the same GPU engine run eagerly (the graph sizes the
// attention's key splits for the block tables' full width, so sums run in another order; the
// second call replays the graphs the first captured). 3 and 6 live rows: buckets of 4 and 8 with
// padding. Head dims without a compiled decode kernel (tiny_d16) fall back to eager and capture
// nothing.
TEST_P(PagedForwardGpuTest, EngineCudaGraphsMatchEager) {
  REQUIRE_GPU();
  const ModelConfig c = config_named(GetParam());
  EngineOptions graphed = small_pages();
  graphed.cuda_graphs = true;
  const bool capturable = kernels::paged_attention_supports_head_dim(static_cast<int>(c.head_dim));
  expect_variant_agrees(c, 12, greedy_requests(c.vocab_size, 3, 3, 5, 1, 1, 10, 2, 300), graphed,
                        [&](const Engine& e) {
                          EXPECT_EQ(e.graphs_captured() > 0, capturable);
                          EXPECT_EQ(e.bucketed_steps() > 0, capturable);
                        });
}

// Decode forks of one prompt in the shared-prefix (cascade) form on CUDA
// (EngineOptions::cascade_decode) against the same GPU engine without it: prompts of 9 and 14
// tokens span full pages of 4 that their 3 samples share.
TEST_P(PagedForwardGpuTest, EngineCascadeDecodeMatchesPlain) {
  REQUIRE_GPU();
  const ModelConfig c = config_named(GetParam());
  EngineOptions cascade = small_pages();
  cascade.cascade_decode = true;
  expect_variant_agrees(c, 13, greedy_requests(c.vocab_size, 2, 9, 5, 3, 0, 8, 0, 500), cascade,
                        [](const Engine&) {});
}

// Runs everywhere: the configs validate and the schedule fits the cache (so the GPU tests fail
// only on numerics).
TEST_P(PagedForwardGpuTest, ScheduleRunsOnCpu) {
  const auto logits = run_schedule(random_model(config_named(GetParam()), 7, torch::kFloat));
  ASSERT_EQ(logits.size(), 10u);
  EXPECT_EQ(logits[1].size(0), 3);  // b's second chunk asks for no logits
  for (const auto& l : logits)
    EXPECT_TRUE(l.isfinite().all().item<bool>());
}

INSTANTIATE_TEST_SUITE_P(Configs, PagedForwardGpuTest,
                         ::testing::Values("d64", "d128_partial_window", "tiny_d16",
                                           "d64_longrope"));

// Without a GPU this still checks the choice: CPU decode rows read the pages in place in fp32 only
// (bf16 keeps the reference's bf16 rounding).
TEST(PagedForwardAttention, Fp32CpuDecodeReadsThePagesInPlace) {
  const ModelConfig c = config_named("d64");
  EXPECT_TRUE(decode_reads_pages(PagedKvCache(c, 4, 4, torch::kFloat, torch::kCPU)));
  EXPECT_FALSE(decode_reads_pages(PagedKvCache(c, 4, 4, torch::kBFloat16, torch::kCPU)));
}

// The decode rows of one step, as plan_paged_step builds them after appending one token to each.
PagedDecodeBatch decode_step(PagedKvCache& cache, const std::vector<int64_t>& seqs) {
  std::vector<int64_t> offsets;
  for (size_t i = 0; i < seqs.size(); ++i) {
    cache.append(seqs[i], 1);
    offsets.push_back(static_cast<int64_t>(i));
  }
  return paged_decode_batch(cache, seqs, offsets);
}

std::vector<int32_t> int_values(const torch::Tensor& t) {
  auto c = t.to(torch::kCPU).contiguous();
  return {c.data_ptr<int32_t>(), c.data_ptr<int32_t>() + c.numel()};
}

TEST(PagedForwardAttention, ForksReadTheirSharedPagesAsOnePrefix) {
  const ModelConfig c = config_named("d64");
  PagedKvCache cache(c, 64, 4, torch::kFloat, torch::kCPU);
  const int64_t parent = cache.create();
  cache.append(parent, 10);  // two full pages and a partial one
  const int64_t a = cache.fork(parent), b = cache.fork(parent);
  const int64_t other = cache.create();
  cache.append(other, 9);
  const PagedDecodeBatch batch = decode_step(cache, {a, other, b});
  ASSERT_TRUE(batch.shared.has_value());
  const auto groups = int_values(batch.shared->group_of_row);
  EXPECT_EQ(groups[0], groups[2]);
  EXPECT_NE(groups[0], groups[1]);
  // The forks share the parent's two full pages (its partial page was copied on write).
  EXPECT_EQ(int_values(batch.shared->group_prefix_lens)[static_cast<size_t>(groups[0])], 8);
  const auto suffix = int_values(batch.shared->suffix_lens);
  EXPECT_EQ(suffix[0], 3);
  EXPECT_EQ(suffix[2], 3);
  EXPECT_EQ(int_values(batch.shared->group_prefix_lens)[static_cast<size_t>(groups[1])] + suffix[1],
            10);
  // Unrelated rows only: the plain batch.
  EXPECT_FALSE(decode_step(cache, {a, other}).shared.has_value());
}

}  // namespace
}  // namespace align
