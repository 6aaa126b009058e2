// The whole search against a policy whose success probabilities are known exactly.
//
// Planted policy (query = one token, completion = 6 tokens then the stop token 9):
//   positions 0, 1, 3, 5: uniform over {1, 2, 3} (irrelevant tokens)
//   position 2:           4 ("good") or 5 ("bad"), 1/2 each
//   position 4:           7 ("keep") with 0.7, 6 ("ruin") with 0.3
// Success: the completion contains 4 and not 6. So p(query) = 0.35; after 4 it is 0.7, after 5
// it is 0; after 4..7 it is 1, after 4..6 it is 0. The true pivots: position 2 in every
// completion (4 raises 0.35 -> 0.7, 5 lowers 0.35 -> 0) and position 4 in completions that drew 4
// (7 raises 0.7 -> 1, 6 lowers 0.7 -> 0). Nothing else moves p.
#include "pts/pivotal_search.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>

#include "common/error.h"

namespace align {
namespace {

constexpr TokenId kQuery = 50, kStop = 9;

double true_p(const std::vector<TokenId>& completion) {
  bool good = false, ruined = false;
  for (size_t i = 0; i < completion.size(); ++i) {
    if (i == 2) good = completion[i] == 4;
    if (i == 4) ruined = completion[i] == 6;
  }
  if (completion.size() <= 2) return 0.35;
  if (!good || ruined) return 0.0;
  return completion.size() <= 4 ? 0.7 : 1.0;
}

// Draws the rest of a completion after `prefix` (completion tokens) with a counter-seeded RNG.
GeneratedSample draw(const std::vector<TokenId>& prefix, uint64_t seed, int64_t max_new) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  GeneratedSample s;
  for (size_t pos = prefix.size(); static_cast<int64_t>(s.tokens.size()) < max_new; ++pos) {
    TokenId t;
    double p;
    if (pos == 2) {
      t = u(rng) < 0.5 ? 4 : 5;
      p = 0.5;
    } else if (pos == 4) {
      const bool keep = u(rng) < 0.7;
      t = keep ? 7 : 6;
      p = keep ? 0.7 : 0.3;
    } else if (pos >= 6) {
      t = kStop;
      p = 1.0;
    } else {
      t = static_cast<TokenId>(1 + std::min<int>(2, static_cast<int>(u(rng) * 3)));
      p = 1.0 / 3;
    }
    s.tokens.push_back(t);
    s.logprobs.push_back(static_cast<float>(std::log(p)));
    if (t == kStop) break;
  }
  s.finish_reason = s.tokens.back() == kStop ? "stop" : "length";
  return s;
}

std::vector<std::vector<GeneratedSample>> planted_rollouts(
    const std::vector<GenerationRequest>& requests, int64_t* rollouts) {
  std::vector<std::vector<GeneratedSample>> out;
  for (const GenerationRequest& r : requests) {
    EXPECT_EQ(r.prompt.front(), kQuery);  // the query once, never duplicated
    const std::vector<TokenId> prefix(r.prompt.begin() + 1, r.prompt.end());
    out.emplace_back();
    for (int64_t s = 0; s < r.num_samples; ++s)
      out.back().push_back(
          draw(prefix, r.sampling.seed + static_cast<uint64_t>(s), r.max_new_tokens));
    *rollouts += r.num_samples;
  }
  return out;
}

// Text the oracle sees: one letter per token; it never sees the query.
std::string letters(const std::vector<TokenId>& ids) {
  std::string s;
  for (TokenId t : ids)
    if (t != kStop) s += static_cast<char>('a' + t);
  return s;
}

class PlantedOracle : public Oracle {
 public:
  bool grade(const std::string& text, const nlohmann::json&) const override {
    EXPECT_EQ(text.find(static_cast<char>('a' + kQuery)), std::string::npos);
    return text.size() >= 5 && text[2] == 'e' && text[4] != 'g';
  }
  void check_fields(const nlohmann::json&, const std::string&) const override {}
  std::string name() const override { return "planted"; }
};

PtsOptions planted_options() {
  PtsOptions o;
  o.p_gap = 0.2;
  o.completions_per_query = 6;
  o.min_rollouts = 32;
  o.rollout_step = 32;
  o.max_rollouts = 256;
  o.max_new_tokens = 16;
  o.stop_token_ids = {kStop};
  o.seed = 7;
  return o;
}

TEST(PivotalSearch, FindsThePlantedPivotsAndNoOthers) {
  const PtsOptions options = planted_options();
  std::vector<Query> queries;
  for (int q = 0; q < 3; ++q)
    queries.push_back({"q" + std::to_string(q), {kQuery}, nlohmann::json::object()});
  PlantedOracle oracle;
  int64_t rollouts = 0;
  const auto results = search_pivots(
      queries, oracle, options,
      [&](const std::vector<GenerationRequest>& r) { return planted_rollouts(r, &rollouts); },
      letters);
  ASSERT_EQ(results.size(), 3u);
  int64_t raising = 0, lowering = 0, pairs = 0;
  for (const QueryResult& r : results) {
    EXPECT_TRUE(r.kept) << r.id;
    EXPECT_NEAR(r.p_initial, 0.35, 0.15) << r.id;
    ASSERT_FALSE(r.analysed.empty());
    for (const AnalysedCompletion& a : r.analysed) {
      // Completeness: every planted pivot of every analysed completion is found.
      std::vector<int64_t> expected = {2};
      if (a.tokens[2] == 4) expected.push_back(4);
      EXPECT_EQ(a.pivot_positions, expected) << r.id << " completion " << a.completion_index;
      EXPECT_EQ(a.success, true_p(a.tokens) == 1.0);
    }
    for (const PtsPivot& p : r.pivots) {
      // Soundness: only planted pivots, with estimates near the truth.
      const size_t pos = p.prefix.size();
      ASSERT_TRUE(pos == 2 || pos == 4) << "spurious pivot at " << pos;
      std::vector<TokenId> after = p.prefix;
      after.push_back(p.token);
      EXPECT_NEAR(p.p_before, true_p(p.prefix), 0.15);
      EXPECT_NEAR(p.p_after, true_p(after), 0.15);
      (p.p_after > p.p_before ? raising : lowering)++;
    }
    for (const PtsPair& pair : r.pairs) {
      ++pairs;
      const size_t pos = pair.prefix.size();
      // The good token is chosen, the bad one rejected, whichever the completion drew.
      EXPECT_EQ(pair.chosen, pos == 2 ? 4 : 7);
      EXPECT_EQ(pair.rejected, pos == 2 ? 5 : 6);
      EXPECT_GT(pair.p_chosen, pair.p_rejected);
      EXPECT_GT(pair.n_rejected, 0);  // the alternative was measured
      EXPECT_EQ(pair.prefix, r.pivots[pair.pivot_index].prefix);
    }
    EXPECT_EQ(r.rollouts > 0, true);
  }
  EXPECT_GT(raising, 0);
  EXPECT_GT(lowering, 0);
  // Every planted pivot has a measured alternative; pairs repeated within a query count once.
  int64_t distinct = 0;
  for (const QueryResult& r : results) {
    std::set<std::vector<TokenId>> keys;
    for (const PtsPivot& p : r.pivots) {
      std::vector<TokenId> key = p.prefix;
      key.push_back(p.prefix.size() == 2 ? 4 : 7);
      distinct += keys.insert(key).second ? 1 : 0;
    }
  }
  EXPECT_EQ(pairs, distinct);
  int64_t counted = 0;
  for (const auto& r : results)
    counted += r.rollouts;
  EXPECT_EQ(counted, rollouts);
}

TEST(PivotalSearch, QueriesOutsideTheBandAreNotAnalysed) {
  PtsOptions options = planted_options();
  options.band_low = 0.5;  // p(query) = 0.35 is below
  PlantedOracle oracle;
  int64_t rollouts = 0;
  const auto results = search_pivots(
      {{"q", {kQuery}, nlohmann::json::object()}}, oracle, options,
      [&](const std::vector<GenerationRequest>& r) { return planted_rollouts(r, &rollouts); },
      letters);
  EXPECT_FALSE(results[0].kept);
  EXPECT_TRUE(results[0].pivots.empty());
  // Adaptive: stopped once the interval cleared the band, well before max_rollouts.
  EXPECT_LT(results[0].n_initial, options.max_rollouts);
  EXPECT_EQ(results[0].n_initial, rollouts);
}

TEST(PivotalSearch, ResultsDoNotDependOnBatching) {
  const PtsOptions options = planted_options();
  PlantedOracle oracle;
  int64_t rollouts = 0;
  auto fn = [&](const std::vector<GenerationRequest>& r) { return planted_rollouts(r, &rollouts); };
  const std::vector<Query> queries = {{"a", {kQuery}, nlohmann::json::object()},
                                      {"b", {kQuery}, nlohmann::json::object()}};
  const auto together = search_pivots(queries, oracle, options, fn, letters);
  const auto alone = search_pivots({queries[1]}, oracle, options, fn, letters);
  ASSERT_EQ(together[1].pivots.size(), alone[0].pivots.size());
  for (size_t i = 0; i < alone[0].pivots.size(); ++i) {
    EXPECT_EQ(together[1].pivots[i].prefix, alone[0].pivots[i].prefix);
    EXPECT_EQ(together[1].pivots[i].p_after, alone[0].pivots[i].p_after);
  }
  EXPECT_EQ(together[1].rollouts, alone[0].rollouts);
}

TEST(PivotalSearch, ConfirmationKeepsRealPivots) {
  PtsOptions options = planted_options();
  options.confirm = true;
  options.confirm_rollouts = 128;
  PlantedOracle oracle;
  int64_t rollouts = 0;
  const auto results = search_pivots(
      {{"q", {kQuery}, nlohmann::json::object()}}, oracle, options,
      [&](const std::vector<GenerationRequest>& r) { return planted_rollouts(r, &rollouts); },
      letters);
  EXPECT_EQ(results[0].pivots_dropped, 0);
  EXPECT_FALSE(results[0].pivots.empty());
}

TEST(PivotalSearch, RejectsBadOptions) {
  PtsOptions options = planted_options();
  options.p_gap = 0;
  EXPECT_THROW(validate(options), InputError);
  options = planted_options();
  options.max_rollouts = 4;
  EXPECT_THROW(validate(options), InputError);
}

}  // namespace
}  // namespace align
