// Longrope (Phi-4-mini) past original_max_position_embeddings in the paged cache, the prefix cache
// and the engine (docs/longrope.md), against transformers' generate() (the "crossing" records of
// mini_tiny.json, switch at 32 tokens) and against a forward over the sequence so far.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <iostream>

#include "common/error.h"
#include "model/logprobs.h"
#include "rollout/engine.h"
#include "rollout/paged_forward.h"
#include "rollout/prefix_cache.h"
#include "tests/model/model_test_util.h"
#include "tests/rollout/engine_test_util.h"

namespace align {
namespace {

using testing::expect_same;
using testing::ids;
using testing::max_abs_diff;
using testing::random_tokens;
using testing::small_pages;
using testing::token_row;

constexpr int64_t kSwitch = 32;  // mini_tiny's original_max_position_embeddings

// fp32 log-probs: the engine's packed [N, C] matmuls and chunked attention round differently from
// transformers' full forward; measured below 1e-5 (printed by each test). 1e-4 is the engine's
// teacher-forcing tolerance (engine_test.cc). A wrong factor set moves them by 0.1 to 7 here.
constexpr double kLogprobTol = 1e-4;

Phi3Model mini(torch::ScalarType dtype = torch::kFloat) {
  return Phi3Model::load(testing::golden_model_dir("mini_tiny"), dtype, torch::kCPU);
}

GenerationRequest greedy(std::vector<TokenId> prompt, int64_t max_new, int64_t samples) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.max_new_tokens = max_new;
  r.num_samples = samples;
  r.sampling.temperature = 0;
  return r;
}

GenerationRequest sampled(std::vector<TokenId> prompt, int64_t max_new, int64_t samples,
                          uint64_t seed) {
  GenerationRequest r = greedy(std::move(prompt), max_new, samples);
  r.sampling.temperature = 0.9;
  r.sampling.seed = seed;
  return r;
}

// log p(seq[j] | seq[:j]) from one forward over seq[:j]: transformers' generate() step (its
// cache re-computed at the switch), with the factor set of a j-token sequence.
double prefix_logprob(const Phi3Model& model, const std::vector<int64_t>& seq, size_t j) {
  ForwardInput in;
  in.tokens = token_row(std::vector<int64_t>(seq.begin(), seq.begin() + static_cast<int64_t>(j)));
  in.logits = LogitsAt::kLast;
  auto logp = torch::log_softmax(model.forward(in).logits[0], -1);
  return logp[seq[j]].item<double>();
}

std::vector<int64_t> full_sequence(const GenerationRequest& r, const GeneratedSample& s) {
  std::vector<int64_t> seq(r.prompt.begin(), r.prompt.end());
  seq.insert(seq.end(), s.tokens.begin(), s.tokens.end());
  return seq;
}

// --- The caches keep one factor set per sequence.

TEST(LongropeCache, FactorSetIsChosenAtCreationAndInheritedByForks) {
  const Phi3Model model = mini();
  PagedKvCache cache(model.config(), 16, 4, torch::kFloat, torch::kCPU);
  const int64_t plain = cache.create(), long_seq = cache.create(true);
  EXPECT_FALSE(cache.long_rope(plain));
  EXPECT_TRUE(cache.long_rope(long_seq));
  cache.append(long_seq, 5);
  EXPECT_TRUE(cache.long_rope(cache.fork(long_seq)));
  EXPECT_FALSE(cache.long_rope(cache.fork(plain)));

  const Phi3Model phi4 =
      Phi3Model::load(testing::golden_model_dir("phi4_tiny"), torch::kFloat, torch::kCPU);
  PagedKvCache default_rope(phi4.config(), 4, 4, torch::kFloat, torch::kCPU);
  EXPECT_THROW(default_rope.create(true), Error);
}

TEST(LongropeCache, PrefixEntriesMatchOnlyTheirFactorSet) {
  const Phi3Model model = mini();
  PagedKvCache cache(model.config(), 32, 4, torch::kFloat, torch::kCPU);
  PrefixCache prefixes(cache, 8);
  const std::vector<TokenId> tokens = {5, 6, 7, 8, 9, 10, 11};
  const int64_t a = cache.create(), b = cache.create(true);
  cache.append(a, 7);
  cache.append(b, 5);
  prefixes.insert(tokens, a);
  // A long-factor entry covered by the short one is still kept: it holds other keys.
  prefixes.insert(std::vector<TokenId>(tokens.begin(), tokens.begin() + 5), b);
  EXPECT_EQ(prefixes.size(), 2u);
  const auto short_match = prefixes.find(tokens, 10, false);
  const auto long_match = prefixes.find(tokens, 10, true);
  EXPECT_EQ(short_match.length, 7);
  EXPECT_EQ(long_match.length, 5);
  EXPECT_NE(short_match.entry, long_match.entry);
  EXPECT_TRUE(cache.long_rope(prefixes.fork(long_match)));
  EXPECT_FALSE(cache.long_rope(prefixes.fork(short_match)));
  // Nothing matched: a fresh sequence of the asked-for set.
  const auto none = prefixes.find({99}, 10, true);
  EXPECT_EQ(none.entry, -1);
  EXPECT_TRUE(cache.long_rope(prefixes.fork(none)));
}

// --- paged_forward on a long-factor sequence equals the full forward of the whole sequence.

TEST(LongropePagedForward, ChunkedPrefillAndDecodeUseTheLongFactors) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = mini();
  const auto seq = random_tokens(48, model.config().vocab_size, 7);
  PagedKvCache cache(model.config(), 16, 4, torch::kFloat, torch::kCPU);
  const int64_t s = cache.create(true);
  double worst = 0;
  int64_t done = 0;
  // Chunks of a 40-token prompt (two of them end before the switch), then decode to 48.
  for (int64_t end : {10, 32, 40, 41, 42, 43, 44, 45, 46, 47, 48}) {
    std::vector<TokenId> chunk(seq.begin() + done, seq.begin() + end);
    const auto got = paged_forward(model, cache, {{s, chunk, true}})[0];
    ForwardInput in;  // the whole prefix, its factors those of a 40-token (or longer) sequence
    in.tokens = token_row(std::vector<int64_t>(seq.begin(), seq.begin() + end));
    in.rope_lengths = {std::max<int64_t>(end, 40)};
    const auto expected = model.forward(in).logits[0];
    worst = std::max(worst, max_abs_diff(got, expected));
    done = end;
  }
  std::cout << "paged long-factor max |dlogit| = " << worst << "\n";
  EXPECT_LT(worst, 1e-4);
}

TEST(LongropePagedForward, ShortFactorKeysCannotGrowPastTheSwitch) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = mini();
  PagedKvCache cache(model.config(), 16, 4, torch::kFloat, torch::kCPU);
  const int64_t s = cache.create();
  paged_forward(model, cache, {{s, ids(random_tokens(kSwitch, 100, 3)), true}});
  EXPECT_THROW(paged_forward(model, cache, {{s, {7}, true}}), InputError);
  EXPECT_EQ(cache.length(s), kSwitch);
}

// --- The engine against transformers' generate() across the switch.

TEST(LongropeEngine, GreedyMatchesTransformersGenerateAcrossTheSwitch) {
  const Phi3Model model = mini();
  const auto record = testing::golden_record("mini_tiny");
  std::vector<GenerationRequest> requests;
  for (const auto& g : record["crossing"]) {
    requests.push_back(greedy(ids(g["prompt"].get<std::vector<int64_t>>()),
                              static_cast<int64_t>(g["fp32"]["tokens"].size()), 2));
  }
  ASSERT_EQ(requests.size(), 4u);  // prompts of 20, 31, 32 (all cross) and 40 tokens
  EngineOptions reuse = small_pages(true), plain = small_pages(false), chunked = small_pages(true);
  chunked.prefill_chunk = 7;  // the 40-token prompt and every re-run over several steps
  for (const auto& [name, options] :
       {std::pair{"reuse", reuse}, std::pair{"no reuse", plain}, std::pair{"chunked", chunked}}) {
    Engine engine(model, nullptr, options);
    const auto results = engine.generate(requests);
    double worst = 0;
    for (size_t i = 0; i < requests.size(); ++i) {
      const auto& want = record["crossing"][i]["fp32"];
      const auto tokens = ids(want["tokens"].get<std::vector<int64_t>>());
      const auto logprobs = want["logprobs"].get<std::vector<double>>();
      for (const auto& s : results[i]) {
        EXPECT_EQ(s.tokens, tokens) << name << " record " << i;
        ASSERT_EQ(s.logprobs.size(), logprobs.size());
        for (size_t t = 0; t < logprobs.size(); ++t)
          worst = std::max(worst, std::abs(s.logprobs[t] - logprobs[t]));
      }
    }
    std::cout << name << ": max |engine - generate() logprob| = " << worst << "\n";
    EXPECT_LT(worst, kLogprobTol) << name;
    // Three requests cross (2 samples each: 33 tokens re-run); with reuse the second sample,
    // identical under greedy, waits for the first's re-run and forks all but its last token.
    EXPECT_EQ(engine.stats().switch_tokens, options.reuse_prefixes ? 3 * (33 + 1) : 6 * 33) << name;
  }
}

// bf16: the engine rounds where transformers' eager bf16 path does (bf16 CPU models keep the
// reference attention, rollout/paged_forward_attention.h): the same greedy tokens, and per-step
// log-probs held to FlashAttention's rule and same rounding (tests/model/model_test_util.h)
// against an fp32 reference, align's fp32 teacher-forced forward over the same tokens (a prefix's
// log-prob is that of a forward over the sequence so far; past the switch the whole sequence takes
// the long factors, as in generate()'s re-run). The engine and generate() measured 5e-8 apart where
// both ran the goldens' AVX2 kernels, 4e-6 with AMX GEMMs.
TEST(LongropeEngine, Bf16GreedyMatchesTransformersGenerateAcrossTheSwitch) {
  const Phi3Model model = mini(torch::kBFloat16);
  const Phi3Model exact = mini(torch::kFloat);
  const auto record = testing::golden_record("mini_tiny");
  std::vector<GenerationRequest> requests;
  for (const auto& g : record["crossing"]) {
    requests.push_back(greedy(ids(g["prompt"].get<std::vector<int64_t>>()),
                              static_cast<int64_t>(g["bf16"]["tokens"].size()), 1));
  }
  Engine engine(model, nullptr, small_pages());
  const auto results = engine.generate(requests);
  torch::NoGradGuard no_grad;
  testing::Bf16Parity parity;
  for (size_t i = 0; i < requests.size(); ++i) {
    const auto& want = record["crossing"][i]["bf16"];
    const auto want_tokens = ids(want["tokens"].get<std::vector<int64_t>>());
    EXPECT_EQ(results[i][0].tokens, want_tokens) << i;
    const auto logprobs = want["logprobs"].get<std::vector<double>>();
    ASSERT_EQ(results[i][0].logprobs.size(), logprobs.size());
    if (results[i][0].tokens != want_tokens) continue;  // other prefixes: nothing to compare
    const auto seq = full_sequence(requests[i], results[i][0]);
    const size_t P = requests[i].prompt.size();
    for (size_t t = 0; t < logprobs.size(); ++t)
      parity.add(results[i][0].logprobs[t], logprobs[t], prefix_logprob(exact, seq, P + t));
  }
  testing::expect_bf16_parity(parity, "engine vs generate() across the switch",
                              "align fp32 forward over the sequence so far");
}

TEST(LongropeEngine, LogprobsAreThoseOfAForwardOverTheSequenceSoFar) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = mini();
  const int64_t V = model.config().vocab_size;
  std::vector<GenerationRequest> requests = {sampled(ids(random_tokens(10, V, 1)), 30, 3, 11),
                                             sampled(ids(random_tokens(30, V, 2)), 8, 2, 12),
                                             sampled(ids(random_tokens(36, V, 3)), 6, 2, 13)};
  Engine engine(model, nullptr, small_pages());
  const auto results = engine.generate(requests);
  double worst = 0, worst_long = 0, short_vs_full = 0;
  for (size_t r = 0; r < requests.size(); ++r) {
    const size_t P = requests[r].prompt.size();
    for (const auto& s : results[r]) {
      ASSERT_EQ(static_cast<int64_t>(s.tokens.size()), requests[r].max_new_tokens);
      const auto seq = full_sequence(requests[r], s);
      const auto full = token_logprobs(model, token_row(seq))[0];  // teacher forcing: all long
      for (size_t i = 0; i < s.tokens.size(); ++i) {
        const size_t j = P + i;  // the token's position = the length of what it is drawn after
        worst = std::max(worst, std::abs(s.logprobs[i] - prefix_logprob(model, seq, j)));
        const double d = std::abs(s.logprobs[i] - full[static_cast<int64_t>(j)].item<double>());
        if (static_cast<int64_t>(j) > kSwitch) {
          worst_long = std::max(worst_long, d);
        } else {
          short_vs_full = std::max(short_vs_full, d);
        }
      }
    }
  }
  std::cout << "max |engine - forward over the prefix| = " << worst
            << ", past the switch |engine - full teacher forcing| = " << worst_long
            << ", before it = " << short_vs_full << " (short vs long factors)\n";
  EXPECT_LT(worst, kLogprobTol);
  EXPECT_LT(worst_long, kLogprobTol);
  EXPECT_GT(short_vs_full, 0.1);  // what docs/longrope.md describes, not rounding
  // At the switch each sample re-runs its 33 tokens, less what it shares with a sibling's re-run
  // (the prompt at least: the siblings wait for the first and fork it). The first two requests
  // cross (the third is long from its prefill).
  int64_t expected_switch = 0;
  for (size_t r = 0; r < 2; ++r) {
    std::vector<std::vector<int64_t>> done;
    for (const auto& s : results[r]) {
      auto seq = full_sequence(requests[r], s);
      seq.resize(kSwitch + 1);
      int64_t shared = 0;
      for (const auto& other : done) {
        int64_t n = 0;
        while (n < kSwitch && seq[static_cast<size_t>(n)] == other[static_cast<size_t>(n)])
          ++n;
        shared = std::max(shared, n);
      }
      expected_switch += kSwitch + 1 - shared;
      done.push_back(seq);
    }
  }
  EXPECT_EQ(engine.stats().switch_tokens, expected_switch);
  EXPECT_LE(expected_switch, 33 + 2 * 23 + 33 + 3);
}

TEST(LongropeEngine, CachedPrefixesOnBothSidesOfTheSwitch) {
  const Phi3Model model = mini();
  const auto record = testing::golden_record("mini_tiny");
  const auto& golden = record["crossing"][0];  // a 20-token prompt, 24 greedy tokens
  const auto prompt = ids(golden["prompt"].get<std::vector<int64_t>>());
  const auto want = ids(golden["fp32"]["tokens"].get<std::vector<int64_t>>());
  const auto want_lp = golden["fp32"]["logprobs"].get<std::vector<double>>();
  auto run = [&](bool reuse, Engine::Stats* stats) {
    Engine engine(model, nullptr, small_pages(reuse));
    auto first = engine.generate({greedy(prompt, 24, 1)});
    // A PTS-like second call: a prefix within the switch (its continuation crosses) and one past
    // it, both extending the first call's sample.
    std::vector<TokenId> within = prompt, past = prompt;
    within.insert(within.end(), want.begin(), want.begin() + 5);  // 25 tokens
    past.insert(past.end(), want.begin(), want.end());            // 44 tokens
    engine.reset_stats();
    auto second = engine.generate({greedy(within, 12, 1), greedy(past, 4, 1)});
    *stats = engine.stats();
    second.push_back(first[0]);
    return second;
  };
  Engine::Stats with, without;
  const auto reused = run(true, &with);
  const auto fresh = run(false, &without);
  expect_same(reused, fresh, 1e-5);
  // Transformers' continuation of the 25-token prefix is the golden one from token 5 on.
  const auto& within = reused[0][0];
  EXPECT_EQ(within.tokens, std::vector<TokenId>(want.begin() + 5, want.begin() + 17));
  double worst = 0;
  for (size_t i = 0; i < within.tokens.size(); ++i)
    worst = std::max(worst, std::abs(within.logprobs[i] - want_lp[5 + i]));
  EXPECT_LT(worst, kLogprobTol);
  EXPECT_EQ(reused[2][0].tokens, want);
  // The 25-token prompt reuses the first prompt (20 short-factor tokens), not the first sample's
  // long-factor keys; the 44-token prompt reuses those (prompt + 23 fed tokens); the 25-token
  // prompt's sample, at the switch, forks the same long-factor entry for 32 of its 33 tokens.
  EXPECT_EQ(without.reused_prefix_tokens, 0);
  EXPECT_EQ(with.reused_prefix_tokens, 20 + 43 + 32);
  EXPECT_EQ(with.prefill_tokens, 5 + 1);
  EXPECT_EQ(with.switch_tokens, 1);
  EXPECT_EQ(without.switch_tokens, 33);
}

TEST(LongropeEngine, ResultsDoNotDependOnTheBatchOrTheBudget) {
  const Phi3Model model = mini();
  const int64_t V = model.config().vocab_size;
  const auto target = sampled(ids(random_tokens(10, V, 21)), 30, 2, 5);
  const std::vector<GenerationRequest> batch = {sampled(ids(random_tokens(36, V, 22)), 6, 2, 6),
                                                target,
                                                sampled(ids(random_tokens(5, V, 23)), 10, 3, 7)};
  EngineOptions options = small_pages(false);
  options.prefill_chunk = 8;
  Engine alone(model, nullptr, options), together(model, nullptr, options);
  const auto all = together.generate(batch);
  // The decode attention's shared-prefix form depends on which forks share a step: rounding of
  // ~1e-5 on these log-probs; kLogprobTol as for teacher forcing.
  expect_same(alone.generate({target}), {all[1]}, kLogprobTol);
  // 25 pages: the crossing request alone needs 3 prompt pages + 2 x (9 re-run + 2 growth).
  for (bool reuse : {false, true}) {
    EngineOptions tiny = options;
    tiny.kv_budget_tokens = 4 * 25;
    tiny.reuse_prefixes = reuse;
    Engine cramped(model, nullptr, tiny);
    expect_same(cramped.generate(batch), all, kLogprobTol);
    EXPECT_LE(cramped.stats().peak_pages, 25);
    EXPECT_GT(cramped.stats().steps, together.stats().steps);  // requests waited for pages
    if (!reuse) {
      EXPECT_EQ(cramped.kv_cache().free_pages(), 25);  // finished samples freed their pages
    }
  }
}

}  // namespace
}  // namespace align
