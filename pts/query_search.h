// One query's Pivotal Token Search as a state machine (the stages are described in
// pts/pivotal_search.h). It never samples: advance() decides what it can from the counts at hand
// and leaves a list of needs (rollouts wanted at a prefix, or a finished prefix to grade), which
// the driver fulfils for all queries of a batch at once and feeds back with add_rollouts().
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "pts/pivotal_search.h"
#include "pts/subdivide.h"

namespace align {

// Which estimates: the search's own, or the confirmation pass's fresh ones (other seeds).
enum class EstimateSpace { kSearch, kConfirm };

struct EstimateNeed {
  EstimateSpace space = EstimateSpace::kSearch;
  std::vector<TokenId> prefix;  // completion tokens after the query
  int64_t count = 0;            // more rollouts wanted (0 when grade_exactly)
  int64_t drawn = 0;            // rollouts drawn there so far (the seed offset)
  bool grade_exactly = false;   // a finished prefix: grade its own text once
};

class QuerySearch {
 public:
  QuerySearch(const Query& query, const PtsOptions& options);

  // Decides everything the current counts allow; returns true once the query is done.
  bool advance();
  bool done() const { return stage_ == Stage::kDone; }
  // What the next round should fetch (valid after advance()).
  std::vector<EstimateNeed> needs() const;

  // Graded rollouts continuing `prefix` (success[i] for samples[i]).
  void add_rollouts(EstimateSpace space, const std::vector<TokenId>& prefix,
                    const std::vector<GeneratedSample>& samples, const std::vector<bool>& success);
  // The grade of a finished prefix.
  void add_exact(EstimateSpace space, const std::vector<TokenId>& prefix, bool success);

  QueryResult result() const;
  const Query& query() const { return query_; }

 private:
  struct PrefixStats {
    SuccessCount count;
    std::map<TokenId, SuccessCount> first_tokens;  // rollouts from here, by their first token
    int64_t target = 0;                            // rollouts wanted in total
    bool inherited = false;  // holds the parent's rollouts that began with this prefix's last token
  };
  // Where one pivot is: confirming its estimates, measuring alternatives, or done.
  enum class PivotStage { kConfirm, kAlternatives, kDone };
  struct PivotState {
    PtsPivot pivot;
    bool raises = false;  // p_after > p_before
    PivotStage stage = PivotStage::kConfirm;
    bool dropped = false;             // failed confirmation
    std::vector<TokenId> candidates;  // alternative first tokens, best first
    size_t next_candidate = 0;
    bool has_pair = false;
    PtsPair pair;
  };
  enum class Stage { kBand, kSubdivide, kPivots, kDone };

  PrefixStats& stats(EstimateSpace space, const std::vector<TokenId>& prefix);
  bool finished_prefix(const std::vector<TokenId>& prefix) const;
  // Asks for `target` rollouts in all at `prefix` (or its exact grade); true when available.
  bool ensure(EstimateSpace space, const std::vector<TokenId>& prefix, int64_t target);
  // Asks for rollout_step more unless exact or at max_rollouts; true when it asked.
  bool grow(EstimateSpace space, const std::vector<TokenId>& prefix);
  bool advance_band();
  void start_subdivisions();
  bool advance_subdivisions();
  GapDecision decide_gap(size_t completion, int64_t a, int64_t b);
  void collect_pivots();
  bool advance_pivot(PivotState& state);
  bool advance_confirm(PivotState& state);
  bool advance_alternative(PivotState& state);
  std::vector<TokenId> completion_prefix(size_t completion, int64_t length) const;

  Query query_;
  PtsOptions options_;
  double z_;
  Stage stage_ = Stage::kBand;
  std::map<std::vector<TokenId>, PrefixStats> search_, confirm_;
  std::vector<GeneratedSample> samples_;  // the query's own completions (rollouts at prefix 0)
  std::vector<bool> sample_success_;
  std::vector<size_t> analysed_;  // indices into samples_
  std::vector<Subdivision> subdivisions_;
  std::vector<PivotState> pivots_;
  int64_t n_initial_ = 0;
  double p_initial_ = 0;
  int64_t rollouts_ = 0, tokens_generated_ = 0;
};

}  // namespace align
