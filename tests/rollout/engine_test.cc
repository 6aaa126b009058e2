// The generation engine: Hugging Face greedy parity, log-probs equal to a teacher-forced forward,
// batch invariance, prefix sharing and reuse, waiting under a tiny KV budget, stop conditions.
#include "rollout/engine.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "model/logprobs.h"
#include "tests/model/model_test_util.h"
#include "tests/rollout/engine_test_util.h"

namespace align {
namespace {

using testing::expect_same;
using testing::ids;
using testing::random_tokens;
using testing::small_pages;

Phi3Model golden_model(const std::string& name) {
  return Phi3Model::load(testing::golden_model_dir(name), torch::kFloat, torch::kCPU);
}

GenerationRequest sampled(std::vector<TokenId> prompt, int64_t samples, int64_t max_new,
                          uint64_t seed) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.num_samples = samples;
  r.max_new_tokens = max_new;
  r.sampling.temperature = 0.8;
  r.sampling.top_p = 0.9;
  r.sampling.seed = seed;
  return r;
}

class EngineGreedyTest : public ::testing::TestWithParam<std::string> {};

TEST_P(EngineGreedyTest, MatchesTransformersGenerate) {
  const Phi3Model model = golden_model(GetParam());
  const auto record = testing::golden_record(GetParam());
  std::vector<GenerationRequest> requests;
  std::vector<std::vector<TokenId>> expected;
  for (const auto& g : record["greedy"]) {
    GenerationRequest r;
    r.prompt = ids(g["prompt"].get<std::vector<int64_t>>());
    expected.push_back(ids(g["fp32"].get<std::vector<int64_t>>()));
    r.max_new_tokens = static_cast<int64_t>(expected.back().size());
    r.sampling.temperature = 0;
    r.num_samples = 2;
    requests.push_back(r);  // mini_tiny's 26-token prompt decodes across its longrope switch
  }
  ASSERT_FALSE(requests.empty());
  Engine engine(model, nullptr, small_pages());
  const auto results = engine.generate(requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    for (const auto& s : results[i]) {
      EXPECT_EQ(s.tokens, expected[i]) << "record " << i;
      EXPECT_EQ(s.finish_reason, "length");
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, EngineGreedyTest, ::testing::Values("phi4_tiny", "mini_tiny"));

TEST(Engine, LogprobsEqualTeacherForcedForward) {
  const Phi3Model model = golden_model("phi4_tiny");
  const int64_t V = model.config().vocab_size;
  std::vector<GenerationRequest> requests = {sampled(ids(random_tokens(5, V, 1)), 3, 12, 7),
                                             sampled(ids(random_tokens(11, V, 2)), 2, 9, 8)};
  Engine engine(model, nullptr, small_pages());
  const auto results = engine.generate(requests);
  torch::NoGradGuard no_grad;
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto& prompt = requests[r].prompt;
    for (const auto& s : results[r]) {
      ASSERT_EQ(static_cast<int64_t>(s.tokens.size()), requests[r].max_new_tokens);
      std::vector<int64_t> seq(prompt.begin(), prompt.end());
      seq.insert(seq.end(), s.tokens.begin(), s.tokens.end());
      auto teacher = token_logprobs(model, testing::token_row(seq))[0];
      for (size_t i = 0; i < s.tokens.size(); ++i) {
        EXPECT_NEAR(s.logprobs[i], teacher[static_cast<int64_t>(prompt.size() + i)].item<float>(),
                    1e-4)
            << "request " << r << " token " << i;
      }
    }
    // Different seeds give different samples.
    EXPECT_NE(results[r][0].tokens, results[r][1].tokens);
  }
}

TEST(Engine, ResultsDoNotDependOnTheBatch) {
  const Phi3Model model = golden_model("phi4_tiny");
  const int64_t V = model.config().vocab_size;
  const auto target = sampled(ids(random_tokens(9, V, 11)), 2, 14, 5);
  std::vector<GenerationRequest> batch = {sampled(ids(random_tokens(23, V, 12)), 3, 6, 1), target,
                                          sampled(ids(random_tokens(2, V, 13)), 1, 20, 2),
                                          sampled(ids(random_tokens(15, V, 14)), 4, 3, 3)};
  EngineOptions options = small_pages();
  options.prefill_chunk = 8;  // prompts arrive over several steps, alongside decode rows
  Engine alone(model, nullptr, options), together(model, nullptr, options);
  const auto one = alone.generate({target});
  const auto all = together.generate(batch);
  expect_same(one, {all[1]}, 1e-5);
  EXPECT_GT(together.stats().steps, 0);
}

TEST(Engine, PromptIsPrefilledOnceForAllSamples) {
  const Phi3Model model = golden_model("phi4_tiny");
  const auto prompt = ids(random_tokens(10, model.config().vocab_size, 21));
  Engine engine(model, nullptr, small_pages());
  const auto results = engine.generate({sampled(prompt, 6, 5, 0)});
  EXPECT_EQ(engine.stats().prefill_tokens, 10);
  EXPECT_EQ(engine.stats().decode_tokens, 6 * 4);  // the 5th token of each is never fed
  EXPECT_EQ(engine.stats().reused_prefix_tokens, 0);
  // 3 prompt pages shared by all; each sample copies the partial third page once and needs
  // ceil(14 / 4) = 4 pages in all: at most 3 + 6 * 2 in use.
  EXPECT_LE(engine.stats().peak_pages, 3 + 6 * 2);
  ASSERT_EQ(results[0].size(), 6u);
}

TEST(Engine, NestedPrefixesReuseTheCacheWithSameResults) {
  const Phi3Model model = golden_model("phi4_tiny");
  const int64_t V = model.config().vocab_size;
  const auto query = ids(random_tokens(9, V, 31));
  // PTS: sample a completion of the query, then roll out from nested prefixes of it.
  auto run = [&](bool reuse, Engine::Stats* stats) {
    Engine engine(model, nullptr, small_pages(reuse));
    auto first = engine.generate({sampled(query, 1, 24, 100)});
    const auto& completion = first[0][0].tokens;
    std::vector<GenerationRequest> nested;
    for (size_t k : {size_t{3}, size_t{17}, size_t{8}, size_t{22}}) {
      std::vector<TokenId> prompt = query;
      prompt.insert(prompt.end(), completion.begin(), completion.begin() + k);
      nested.push_back(sampled(prompt, 3, 6, 200 + k));
    }
    engine.reset_stats();
    auto second = engine.generate(nested);
    *stats = engine.stats();
    second.push_back(first[0]);
    return second;
  };
  Engine::Stats with, without;
  const auto reused = run(true, &with);
  const auto fresh = run(false, &without);
  expect_same(reused, fresh);
  EXPECT_EQ(without.reused_prefix_tokens, 0);
  EXPECT_EQ(without.prefill_tokens, 4 * 9 + 3 + 17 + 8 + 22);
  // Every nested prompt is a prefix of the first call's sample (prompt + 23 fed tokens): each
  // reuses all but its last token.
  EXPECT_EQ(with.reused_prefix_tokens, 4 * 9 + 3 + 17 + 8 + 22 - 4);
  EXPECT_EQ(with.prefill_tokens, 4);
}

TEST(Engine, PromptsSubmittedTogetherShareTheirCommonPrefix) {
  const Phi3Model model = golden_model("phi4_tiny");
  const auto base = ids(random_tokens(20, model.config().vocab_size, 41));
  std::vector<GenerationRequest> requests;
  for (size_t k : {size_t{12}, size_t{20}, size_t{16}}) {
    requests.push_back(sampled(
        std::vector<TokenId>(base.begin(), base.begin() + static_cast<int64_t>(k)), 2, 4, k));
  }
  Engine shared(model, nullptr, small_pages(true)), plain(model, nullptr, small_pages(false));
  expect_same(shared.generate(requests), plain.generate(requests));
  EXPECT_EQ(plain.stats().prefill_tokens, 12 + 20 + 16);
  // 12 is prefilled first; 20 and 16 wait for it, then both reuse its 12 cached tokens (16 does
  // not wait for 20: that would save fewer than page_size more tokens).
  EXPECT_EQ(shared.stats().prefill_tokens, 12 + 8 + 4);
  EXPECT_EQ(shared.stats().reused_prefix_tokens, 12 + 12);
}

TEST(Engine, TinyBudgetMakesRequestsWaitWithIdenticalResults) {
  const Phi3Model model = golden_model("phi4_tiny");
  const int64_t V = model.config().vocab_size;
  std::vector<GenerationRequest> requests;
  for (uint64_t i = 0; i < 6; ++i)
    requests.push_back(sampled(ids(random_tokens(3 + 4 * static_cast<int64_t>(i), V, 50 + i)), 2,
                               8 + static_cast<int64_t>(i), i));
  EngineOptions big = small_pages(false), tiny = small_pages(false);
  tiny.kv_budget_tokens = 4 * 14;  // 14 pages: the largest request alone needs 14
  Engine roomy(model, nullptr, big), cramped(model, nullptr, tiny);
  const auto expected = roomy.generate(requests);
  const auto got = cramped.generate(requests);
  expect_same(got, expected, 1e-5);
  EXPECT_LE(cramped.stats().peak_pages, 14);
  EXPECT_GT(cramped.stats().steps, roomy.stats().steps);  // requests waited for pages
  EXPECT_EQ(cramped.kv_cache().free_pages(), 14);         // finished samples freed their pages
  // With prefix reuse the cache keeps prompts until it needs their pages.
  tiny.reuse_prefixes = true;
  Engine reusing(model, nullptr, tiny);
  expect_same(reusing.generate(requests), expected);
  EXPECT_LE(reusing.stats().peak_pages, 14);
  // A request that can never fit is refused up front.
  auto huge = sampled(ids(random_tokens(30, V, 1)), 4, 40, 0);
  EXPECT_THROW(cramped.generate({huge}), InputError);
}

TEST(Engine, BatchLimitKeepsResults) {
  const Phi3Model model = golden_model("phi4_tiny");
  const int64_t V = model.config().vocab_size;
  std::vector<GenerationRequest> requests;
  for (uint64_t i = 0; i < 5; ++i)
    requests.push_back(sampled(ids(random_tokens(4 + static_cast<int64_t>(i), V, 60 + i)), 2,
                               5 + 2 * static_cast<int64_t>(i), 10 + i));
  EngineOptions narrow = small_pages(false);
  narrow.max_batch = 3;
  narrow.prefill_chunk = 3;
  int64_t progress = 0;
  narrow.on_progress = [&](int64_t done) { progress = done; };
  Engine a(model, nullptr, small_pages(false)), b(model, nullptr, narrow);
  expect_same(b.generate(requests), a.generate(requests), 1e-5);
  EXPECT_EQ(progress, 2 * (5 + 7 + 9 + 11 + 13));
}

TEST(Engine, StopTokensAndStopStrings) {
  const Phi3Model model = golden_model("phi4_tiny");
  const Tokenizer tokenizer = Tokenizer::load(testing::golden_path("tokenizer/main"));
  const auto prompt = ids(random_tokens(6, model.config().vocab_size, 71));
  GenerationRequest greedy;
  greedy.prompt = prompt;
  greedy.max_new_tokens = 16;
  greedy.sampling.temperature = 0;
  Engine engine(model, &tokenizer, small_pages());
  const auto full = engine.generate({greedy})[0][0];
  ASSERT_EQ(full.tokens.size(), 16u);
  EXPECT_EQ(full.text, tokenizer.decode(full.tokens, true));

  auto stop_token = greedy;
  stop_token.stop_token_ids = {full.tokens[4], 99999};
  const auto at_token = engine.generate({stop_token})[0][0];
  size_t first = 0;
  while (full.tokens[first] != full.tokens[4])
    ++first;
  EXPECT_EQ(at_token.finish_reason, "stop");
  EXPECT_EQ(at_token.tokens,
            std::vector<TokenId>(full.tokens.begin(), full.tokens.begin() + first + 1));

  // A stop string made of the text of tokens 6..7: generation stops at the token completing its
  // first occurrence; the text is cut before it.
  const std::string stop = tokenizer.decode(
      std::vector<TokenId>(full.tokens.begin() + 6, full.tokens.begin() + 8), true);
  const size_t at = full.text.find(stop);
  ASSERT_NE(at, std::string::npos);
  auto stop_string = greedy;
  stop_string.stop_strings = {stop};
  const auto at_string = engine.generate({stop_string})[0][0];
  EXPECT_EQ(at_string.finish_reason, "stop");
  EXPECT_EQ(at_string.text, full.text.substr(0, at));
  EXPECT_LE(at_string.tokens.size(), 8u);
  EXPECT_GE(tokenizer.decode(at_string.tokens, true).size(), at + stop.size());
  EXPECT_EQ(
      at_string.tokens,
      std::vector<TokenId>(full.tokens.begin(),
                           full.tokens.begin() + static_cast<int64_t>(at_string.tokens.size())));
}

TEST(Engine, RejectsMalformedRequests) {
  const Phi3Model model = golden_model("phi4_tiny");
  Engine engine(model, nullptr, small_pages());
  GenerationRequest empty;
  EXPECT_THROW(engine.generate({empty}), InputError);
  GenerationRequest bad_token;
  bad_token.prompt = {1, 5000};
  EXPECT_THROW(engine.generate({bad_token}), InputError);
  GenerationRequest needs_tokenizer;
  needs_tokenizer.prompt = {1};
  needs_tokenizer.stop_strings = {"x"};
  EXPECT_THROW(engine.generate({needs_tokenizer}), InputError);
  GenerationRequest zero;
  zero.prompt = {1, 2};
  zero.max_new_tokens = 0;
  zero.num_samples = 2;
  const auto out = engine.generate({zero});
  ASSERT_EQ(out[0].size(), 2u);
  EXPECT_TRUE(out[0][0].tokens.empty());
  EXPECT_EQ(out[0][0].finish_reason, "length");
}

}  // namespace
}  // namespace align
