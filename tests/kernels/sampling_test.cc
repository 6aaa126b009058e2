// The sampler's CPU reference: greedy and low-temperature limits, reproducibility from (seed, step)
// whatever the batch, the filtered distributions checked statistically against an independent
// double-precision computation, and log-probs of the unmodified distribution.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>
#include <vector>

#include "common/error.h"
#include "kernels/counter_rng.h"
#include "kernels/sampling_op.h"

namespace align {
namespace {

std::vector<SamplingParams> repeat(const SamplingParams& p, int64_t n) {
  return std::vector<SamplingParams>(static_cast<size_t>(n), p);
}

std::vector<int64_t> iota_steps(int64_t n, int64_t first = 0) {
  std::vector<int64_t> steps(static_cast<size_t>(n));
  std::iota(steps.begin(), steps.end(), first);
  return steps;
}

// The sampling distribution written out independently in double precision, straight from the
// definitions in sampler.h: temper, keep the k most likely, renormalise and keep the smallest
// prefix with mass >= top_p, keep p >= min_p * p_max, renormalise. `margin` receives how far the
// nearest top-p / min-p decision was from its threshold, so a test can assert it is well posed.
std::vector<double> truncated_distribution(const std::vector<double>& logits,
                                           const SamplingParams& p, double* margin) {
  const size_t vocab = logits.size();
  const double top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> prob(vocab);
  for (size_t i = 0; i < vocab; ++i)
    prob[i] = std::exp((logits[i] - top) / p.temperature);
  const double z = std::accumulate(prob.begin(), prob.end(), 0.0);
  for (double& q : prob)
    q /= z;
  std::vector<size_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return prob[a] > prob[b]; });

  std::vector<bool> keep(vocab, true);
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < vocab) {
    for (size_t r = static_cast<size_t>(p.top_k); r < vocab; ++r)
      keep[order[r]] = false;
  }
  *margin = 1.0;
  if (p.top_p < 1) {
    double mass = 0;
    for (size_t i = 0; i < vocab; ++i)
      mass += keep[i] ? prob[i] : 0;
    double before = 0;
    for (size_t r = 0; r < vocab; ++r) {
      const size_t i = order[r];
      if (!keep[i]) continue;
      *margin = std::min(*margin, std::abs(before / mass - p.top_p));
      if (before / mass >= p.top_p) keep[i] = false;
      before += prob[i];
    }
  }
  if (p.min_p > 0) {
    const double p_max = prob[order[0]];
    for (size_t i = 0; i < vocab; ++i) {
      *margin = std::min(*margin, std::abs(prob[i] / p_max - p.min_p));
      if (prob[i] < p.min_p * p_max) keep[i] = false;
    }
  }
  double kept = 0;
  for (size_t i = 0; i < vocab; ++i)
    kept += keep[i] ? prob[i] : 0;
  std::vector<double> out(vocab);
  for (size_t i = 0; i < vocab; ++i)
    out[i] = keep[i] ? prob[i] / kept : 0;
  return out;
}

TEST(SamplerRng, MatchesSplitMix64AndIsUniform) {
  // mix(0) == 0, so seed 0 is the plain SplitMix64 stream from state 0, whose first output is the
  // published 0xE220A8397B1DCDAF.
  EXPECT_EQ(counter_bits(0, 0), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(counter_bits(42, 7), counter_bits(42, 7));
  EXPECT_NE(counter_bits(42, 7), counter_bits(43, 7));
  EXPECT_NE(counter_bits(42, 7), counter_bits(42, 8));
  const int n = 100000;
  double sum = 0, sum_sq = 0;
  for (int i = 0; i < n; ++i) {
    const double u = counter_uniform(static_cast<uint64_t>(i % 7), static_cast<uint64_t>(i));
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    sum_sq += u * u;
  }
  // Mean of n uniforms: 1/2 with standard error sqrt(1/12 / n) ~ 9e-4; allow 5 of them.
  EXPECT_NEAR(sum / n, 0.5, 5 * std::sqrt(1.0 / 12 / n));
  // E[u^2] = 1/3 with variance 4/45 per draw.
  EXPECT_NEAR(sum_sq / n, 1.0 / 3, 5 * std::sqrt(4.0 / 45 / n));
}

TEST(Sampler, GreedyIsArgmaxAndIgnoresFilters) {
  torch::manual_seed(0);
  const torch::Tensor logits = torch::randn({19, 1000}) * 3;
  SamplingParams greedy;
  greedy.temperature = 0;
  greedy.top_k = 5;
  greedy.top_p = 0.3;
  greedy.min_p = 0.5;
  const SampleResult r = sample(logits, repeat(greedy, 19), iota_steps(19, 100));
  EXPECT_TRUE(torch::equal(r.tokens, logits.argmax(1)));
  // Equal maxima: the first index wins.
  const torch::Tensor flat = torch::tensor({{0.f, 2.f, 1.f, 2.f, 2.f}});
  EXPECT_EQ(sample(flat, {greedy}, {0}).tokens.item<int64_t>(), 1);
}

TEST(Sampler, LowTemperatureLimitIsArgmax) {
  torch::manual_seed(1);
  const int64_t rows = 8, vocab = 100, draws = 300;
  torch::Tensor logits = torch::randn({rows, vocab});
  // A clear winner per row, 0.1 above the rest: at T = 1e-3 its rivals weigh exp(-100) -> 0.
  const torch::Tensor winner = torch::randint(vocab, {rows}, torch::kInt64);
  logits.scatter_(1, winner.unsqueeze(1), std::get<0>(logits.max(1, true)) + 0.1);
  for (double temperature : {1e-3, 1e-30}) {
    SamplingParams p;
    p.temperature = temperature;
    p.seed = 5;
    for (int64_t b = 0; b < rows; ++b) {
      const torch::Tensor row = logits.narrow(0, b, 1).expand({draws, vocab});
      const SampleResult r = sample(row, repeat(p, draws), iota_steps(draws));
      EXPECT_TRUE((r.tokens == winner[b]).all().item<bool>())
          << "T " << temperature << " row " << b;
    }
  }
}

TEST(Sampler, DrawDependsOnlyOnSeedStepAndRow) {
  torch::manual_seed(2);
  const int64_t rows = 6, vocab = 50;
  const torch::Tensor logits = torch::randn({rows, vocab}) * 2;
  std::vector<SamplingParams> params(rows);
  std::vector<int64_t> steps(rows);
  for (int64_t b = 0; b < rows; ++b) {
    SamplingParams& p = params[static_cast<size_t>(b)];
    p.temperature = 0.6 + 0.2 * static_cast<double>(b);
    p.top_k = b % 2 ? 10 : 0;
    p.top_p = b % 3 ? 0.9 : 1.0;
    p.min_p = b == 4 ? 0.05 : 0.0;
    p.seed = 1000 + static_cast<uint64_t>(b);
    steps[static_cast<size_t>(b)] = 17 * b;
  }
  const torch::Tensor full = sample(logits, params, steps).tokens;
  for (int64_t b = 0; b < rows; ++b) {  // each row alone
    const torch::Tensor alone = sample(logits.narrow(0, b, 1), {params[static_cast<size_t>(b)]},
                                       {steps[static_cast<size_t>(b)]})
                                    .tokens;
    EXPECT_EQ(alone.item<int64_t>(), full[b].item<int64_t>()) << "row " << b;
  }
  // Reversed, behind an unrelated row: the same token per request.
  const torch::Tensor order = torch::arange(rows - 1, -1, -1);
  torch::Tensor shuffled = torch::cat({torch::randn({1, vocab}), logits.index_select(0, order)});
  std::vector<SamplingParams> shuffled_params = {SamplingParams{}};
  std::vector<int64_t> shuffled_steps = {3};
  for (int64_t b = rows - 1; b >= 0; --b) {
    shuffled_params.push_back(params[static_cast<size_t>(b)]);
    shuffled_steps.push_back(steps[static_cast<size_t>(b)]);
  }
  const torch::Tensor again = sample(shuffled, shuffled_params, shuffled_steps).tokens;
  EXPECT_TRUE(torch::equal(again.narrow(0, 1, rows).flip({0}), full));
  // A different step (or seed) gives a different draw: 200 steps see many tokens.
  SamplingParams p;
  const int64_t draws = 200;
  const torch::Tensor spread =
      sample(logits.narrow(0, 0, 1).expand({draws, vocab}), repeat(p, draws), iota_steps(draws))
          .tokens;
  EXPECT_GE(std::get<0>(at::_unique(spread)).numel(), 10);
}

// Token frequencies over 20000 draws (steps 0..N-1 of one seed) against the truncated,
// renormalised distribution. Each count is binomial(N, q), so its frequency has standard error
// sqrt(q (1 - q) / N) <= 0.0036; 5 standard errors bound every token (a false alarm per check is
// ~6e-7, and the draws are fixed by the seed, so the test is deterministic). A wrong filter moves
// some token by >= 0.03 here, far outside the bound. Excluded tokens must never appear.
TEST(Sampler, FrequenciesMatchTruncatedDistribution) {
  const std::vector<double> probs = {0.06, 0.003, 0.30, 0.02, 0.10, 0.007,
                                     0.15, 0.04,  0.20, 0.01, 0.08, 0.03};
  const int64_t vocab = static_cast<int64_t>(probs.size()), n = 20000;
  std::vector<double> logits;
  for (double q : probs)
    logits.push_back(std::log(q) + 1.7);
  const torch::Tensor row =
      torch::tensor(std::vector<float>(logits.begin(), logits.end())).unsqueeze(0);

  struct Case {
    const char* name;
    SamplingParams params;
  };
  std::vector<Case> cases;
  auto add = [&](const char* name, double t, int64_t k, double top_p, double min_p) {
    SamplingParams p;
    p.temperature = t;
    p.top_k = k;
    p.top_p = top_p;
    p.min_p = min_p;
    p.seed = 1234 + cases.size();
    cases.push_back({name, p});
  };
  add("plain T=1.3", 1.3, 0, 1.0, 0.0);
  add("top-k 4", 1.0, 4, 1.0, 0.0);
  add("top-p 0.8", 1.0, 0, 0.8, 0.0);
  add("min-p 0.12", 1.0, 0, 1.0, 0.12);
  add("T=0.7 top-k 6 top-p 0.9 min-p 0.05", 0.7, 6, 0.9, 0.05);
  add("T=1.5 top-k 8 top-p 0.85", 1.5, 8, 0.85, 0.0);

  for (const Case& c : cases) {
    double margin = 0;
    const std::vector<double> want = truncated_distribution(logits, c.params, &margin);
    ASSERT_GT(margin, 1e-3) << c.name << ": a threshold sits on a boundary; pick other numbers";
    const SampleResult r = sample(row.expand({n, vocab}), repeat(c.params, n), iota_steps(n));
    const torch::Tensor counts = torch::bincount(r.tokens, {}, vocab);
    int kept = 0;
    for (int64_t i = 0; i < vocab; ++i) {
      const double q = want[static_cast<size_t>(i)];
      const double freq = static_cast<double>(counts[i].item<int64_t>()) / static_cast<double>(n);
      if (q == 0) {
        EXPECT_EQ(counts[i].item<int64_t>(), 0) << c.name << ": excluded token " << i;
      } else {
        ++kept;
        EXPECT_NEAR(freq, q, 5 * std::sqrt(q * (1 - q) / static_cast<double>(n)))
            << c.name << ": token " << i;
      }
    }
    EXPECT_GT(kept, 1) << c.name;
  }
}

TEST(Sampler, TopKKeepsTokensTiedWithTheKth) {
  const torch::Tensor row = torch::tensor({{1.f, 0.f, 1.f, 1.f, -1.f}});
  SamplingParams p;
  p.top_k = 1;
  const int64_t n = 3000;
  const torch::Tensor tokens = sample(row.expand({n, 5}), repeat(p, n), iota_steps(n)).tokens;
  const torch::Tensor counts = torch::bincount(tokens, {}, 5);
  EXPECT_EQ(counts[1].item<int64_t>() + counts[4].item<int64_t>(), 0);
  for (int64_t i : {0, 2, 3})
    EXPECT_GT(counts[i].item<int64_t>(), n / 4) << "token " << i;
}

TEST(Sampler, LogprobsAreOfTheUnmodifiedDistribution) {
  torch::manual_seed(3);
  const int64_t rows = 64, vocab = 300;
  const torch::Tensor logits = torch::randn({rows, vocab}) * 2;
  SamplingParams p;
  p.temperature = 0.5;
  p.top_k = 20;
  p.top_p = 0.9;
  const SampleResult r = sample(logits, repeat(p, rows), iota_steps(rows));
  ASSERT_EQ(r.logprobs.scalar_type(), torch::kFloat32);
  const torch::Tensor raw = torch::log_softmax(logits.to(torch::kFloat64), 1);
  const torch::Tensor want = raw.gather(1, r.tokens.unsqueeze(1)).squeeze(1);
  EXPECT_TRUE(torch::allclose(r.logprobs.to(torch::kFloat64), want, 0, 1e-5));
  // Not the tempered distribution's log-probs.
  const torch::Tensor tempered =
      torch::log_softmax(logits.to(torch::kFloat64) / 0.5, 1).gather(1, r.tokens.unsqueeze(1));
  EXPECT_FALSE(torch::allclose(r.logprobs.to(torch::kFloat64), tempered.squeeze(1), 0, 1e-3));
}

TEST(Sampler, GatherLogprobsMatchesLogSoftmax) {
  torch::manual_seed(4);
  const torch::Tensor logits = torch::randn({7, 33}) * 4;
  const torch::Tensor tokens = torch::randint(33, {7}, torch::kInt64);
  const torch::Tensor want =
      torch::log_softmax(logits.to(torch::kFloat64), 1).gather(1, tokens.unsqueeze(1)).squeeze(1);
  const torch::Tensor got = gather_logprobs(logits, tokens);
  ASSERT_EQ(got.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::allclose(got.to(torch::kFloat64), want, 0, 1e-5));
  const torch::Tensor bf16 = gather_logprobs(logits.to(torch::kBFloat16), tokens);
  EXPECT_TRUE(torch::allclose(bf16.to(torch::kFloat64), want, 0, 0.2));
  EXPECT_THROW(gather_logprobs(logits, torch::full({7}, 33, torch::kInt64)), Error);
  EXPECT_THROW(gather_logprobs(logits, tokens.narrow(0, 0, 6)), Error);
}

TEST(Sampler, RejectsBadInputs) {
  const torch::Tensor logits = torch::randn({2, 10});
  const std::vector<int64_t> steps = {0, 0};
  auto with = [](auto set) {
    SamplingParams p;
    set(p);
    return std::vector<SamplingParams>{SamplingParams{}, p};
  };
  EXPECT_THROW(sample(logits, with([](SamplingParams& p) { p.temperature = -1; }), steps), Error);
  EXPECT_THROW(sample(logits, with([](SamplingParams& p) { p.top_k = -2; }), steps), Error);
  EXPECT_THROW(sample(logits, with([](SamplingParams& p) { p.top_p = 0; }), steps), Error);
  EXPECT_THROW(sample(logits, with([](SamplingParams& p) { p.top_p = 1.5; }), steps), Error);
  EXPECT_THROW(sample(logits, with([](SamplingParams& p) { p.min_p = -0.1; }), steps), Error);
  EXPECT_THROW(sample(logits, {SamplingParams{}}, steps), Error);
  EXPECT_THROW(sample(logits, with([](SamplingParams&) {}), {0, -1}), Error);
  EXPECT_THROW(sample(torch::randn({10}), {SamplingParams{}}, {0}), Error);
  // Degenerate but valid: V = 1, top-k beyond V, an empty batch.
  EXPECT_EQ(sample(torch::zeros({1, 1}), {SamplingParams{}}, {0}).tokens.item<int64_t>(), 0);
  SamplingParams wide;
  wide.top_k = 1000;
  EXPECT_EQ(sample(logits, {wide, wide}, steps).tokens.numel(), 2);
  EXPECT_EQ(sample(torch::zeros({0, 4}), {}, {}).tokens.numel(), 0);
}

}  // namespace
}  // namespace align
