// Pivotal Token Search over a batch of queries (docs/pts.md): the estimation half.
//
// Per query, in stages, every stage's rollouts for every query of the batch gathered into one
// engine call per round:
//   1. band:        sample completions of the query; p(success | query) from their grades,
//                   adaptively (min_rollouts, then + rollout_step while the Wilson interval
//                   straddles band_low or band_high, up to max_rollouts). Queries outside
//                   [band_low, band_high] stop here.
//   2. subdivide:   up to completions_per_query of those completions, successes and failures
//                   alternately, each run through Subdivide (pts/subdivide.h). p(prefix k) comes
//                   from rollouts continuing the query + the completion's first k tokens; a
//                   decision |delta p| >= p_gap draws more rollouts while the Newcombe interval of
//                   the difference straddles p_gap (up to max_rollouts per prefix). A finished
//                   completion's own value is its grade (exact, no rollouts).
//   3. confirm:     (optional) each pivot re-estimated at both ends with confirm_rollouts fresh
//                   rollouts (other seeds); kept only when the fresh |delta p| >= p_gap with the
//                   same sign.
//   4. pairs:       at a pivot with prefix P and token t, an alternative first token x != t is
//                   taken from the rollouts already sampled at P (most frequent first), whose
//                   success rate lies on the other side of p(P): below it for a pivot that raises
//                   p, above for one that lowers it. p(P + x) counts the rollouts from P that began
//                   with x, topped up with rollouts from P + x until the interval of
//                   p(P + x) - p(P) excludes 0 (or max_rollouts). chosen = the higher of t and x,
//                   rejected = the lower. Up to max_alternatives candidates are measured; a pivot
//                   with none on the other side has no pair. No pair carries an unmeasured token.
//                   A pair identical to one already found for the query (the raising and the
//                   lowering pivot at one prefix often give the same) is kept once.
// Everything is token ids: prefixes are id prefixes of the sampled completion, never re-tokenized;
// the oracle sees only the decoded completion (prefix + rollout), never the query.
// Seeds: rollouts at a prefix use seeds derived from (seed, query id, prefix ids) plus the number
// of rollouts already drawn there, so results do not depend on how queries are batched.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/token_id.h"
#include "eval/query_set.h"
#include "eval/success_estimate.h"
#include "oracles/oracle.h"
#include "rollout/engine.h"

namespace align {

struct PtsOptions {
  double p_gap = 0.2;
  double band_low = 0.2, band_high = 0.8;
  int64_t completions_per_query = 4;  // analysed completions (successes and failures alternately)
  int64_t min_rollouts = 16;          // per estimated prefix before any decision
  int64_t rollout_step = 16;          // added while a decision is undecided
  int64_t max_rollouts = 64;          // per prefix
  double confidence = 0.95;           // of the Wilson / Newcombe intervals
  int64_t max_alternatives = 3;       // candidate alternative tokens measured per pivot
  bool confirm = false;
  int64_t confirm_rollouts = 64;
  int64_t max_new_tokens = 512;  // completion length limit (rollouts from prefix k get the rest)
  SamplingParams sampling;       // temperature, top-k/p, min-p (seed unused: see above)
  std::vector<TokenId> stop_token_ids;
  uint64_t seed = 0;

  // The "pts" section of align pts configs (common/config_fields.h); sampling, max_new_tokens and
  // the stop ids come from the other sections and the tokenizer.
  template <typename V>
  void fields(V& v) {
    v("p_gap", p_gap, "a token is pivotal when it moves p(success) by at least this");
    v("band_low", band_low, "queries with p(success) below this are skipped");
    v("band_high", band_high, "queries with p(success) above this are skipped");
    v("completions_per_query", completions_per_query, "completions analysed per query");
    v("min_rollouts", min_rollouts, "rollouts per estimated prefix before any decision");
    v("rollout_step", rollout_step, "rollouts added while a decision is undecided");
    v("max_rollouts", max_rollouts, "rollouts per prefix at most");
    v("confidence", confidence, "of the Wilson / Newcombe intervals behind each decision");
    v("max_alternatives", max_alternatives, "alternative tokens measured per pivot");
    v("confirm", confirm, "re-estimate each pivot with fresh rollouts before keeping it");
    v("confirm_rollouts", confirm_rollouts, "rollouts per end of a pivot when confirming");
    v("seed", seed, "rollout seeds derive from it, the query id and the prefix");
  }
};

struct PtsPivot {
  int64_t completion_index = 0;  // which sampled completion (index among the query's samples)
  std::vector<TokenId> prefix;   // completion tokens before the pivot
  TokenId token = 0;
  double p_before = 0, p_after = 0;
  int64_t n_before = 0, n_after = 0;  // rollouts behind each (0 for an exact, graded completion)
};

struct PtsPair {
  int64_t pivot_index = 0;      // into QueryResult::pivots
  std::vector<TokenId> prefix;  // completion tokens before the pivot
  TokenId chosen = 0, rejected = 0;
  double p_chosen = 0, p_rejected = 0;
  int64_t n_chosen = 0, n_rejected = 0;
};

// One analysed completion with every p(prefix k) the search estimated along it (for reports).
struct AnalysedCompletion {
  int64_t completion_index = 0;
  std::vector<TokenId> tokens;
  bool success = false;
  struct Point {
    int64_t prefix_length;
    double p;
    int64_t n;
  };
  std::vector<Point> estimates;  // sorted by prefix_length
  std::vector<int64_t> pivot_positions;
};

struct QueryResult {
  std::string id;
  double p_initial = 0;
  int64_t n_initial = 0;
  bool kept = false;  // inside the band: analysed
  std::vector<AnalysedCompletion> analysed;
  std::vector<PtsPivot> pivots;
  std::vector<PtsPair> pairs;
  int64_t pivots_dropped = 0;  // by the confirmation pass
  int64_t rollouts = 0;        // sampled continuations, all stages
  int64_t tokens_generated = 0;
  double seconds = 0;  // from the start of its batch until it finished
};

// Samples for a list of requests (results[request][sample]); the Engine's generate() in production.
using RolloutFn =
    std::function<std::vector<std::vector<GeneratedSample>>(const std::vector<GenerationRequest>&)>;
// Token ids -> completion text as the oracle sees it (special tokens skipped).
using DecodeFn = std::function<std::string(const std::vector<TokenId>&)>;

// Runs the search for every query (all batched together) and returns one result per query, in
// order. Throws InputError for invalid options.
std::vector<QueryResult> search_pivots(const std::vector<Query>& queries, const Oracle& oracle,
                                       const PtsOptions& options, const RolloutFn& rollout,
                                       const DecodeFn& decode);

// Checks the option ranges; throws InputError naming the option ("pts.p_gap").
void validate(const PtsOptions& options);

}  // namespace align
