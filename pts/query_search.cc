#include "pts/query_search.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"

namespace align {

QuerySearch::QuerySearch(const Query& query, const PtsOptions& options)
    : query_(query), options_(options), z_(normal_quantile_two_sided(options.confidence)) {}

QuerySearch::PrefixStats& QuerySearch::stats(EstimateSpace space,
                                             const std::vector<TokenId>& prefix) {
  return (space == EstimateSpace::kSearch ? search_ : confirm_)[prefix];
}

bool QuerySearch::finished_prefix(const std::vector<TokenId>& prefix) const {
  if (static_cast<int64_t>(prefix.size()) >= options_.max_new_tokens) return true;
  if (prefix.empty()) return false;
  const auto& stops = options_.stop_token_ids;
  return std::find(stops.begin(), stops.end(), prefix.back()) != stops.end();
}

bool QuerySearch::ensure(EstimateSpace space, const std::vector<TokenId>& prefix, int64_t target) {
  PrefixStats& s = stats(space, prefix);
  if (finished_prefix(prefix)) {
    s.target = 1;
    return s.count.exact;
  }
  s.target = std::max(s.target, std::min(target, options_.max_rollouts));
  return s.count.trials >= s.target;
}

bool QuerySearch::grow(EstimateSpace space, const std::vector<TokenId>& prefix) {
  PrefixStats& s = stats(space, prefix);
  if (s.count.exact || finished_prefix(prefix) || s.count.trials >= options_.max_rollouts) {
    return false;
  }
  ensure(space, prefix, s.count.trials + options_.rollout_step);
  return true;
}

std::vector<EstimateNeed> QuerySearch::needs() const {
  std::vector<EstimateNeed> out;
  for (EstimateSpace space : {EstimateSpace::kSearch, EstimateSpace::kConfirm}) {
    for (const auto& [prefix, s] : space == EstimateSpace::kSearch ? search_ : confirm_) {
      if (finished_prefix(prefix)) {
        if (s.target > 0 && !s.count.exact) out.push_back({space, prefix, 0, 0, true});
      } else if (s.target > s.count.trials) {
        out.push_back({space, prefix, s.target - s.count.trials, s.count.trials, false});
      }
    }
  }
  return out;
}

void QuerySearch::add_rollouts(EstimateSpace space, const std::vector<TokenId>& prefix,
                               const std::vector<GeneratedSample>& samples,
                               const std::vector<bool>& success) {
  PrefixStats& s = stats(space, prefix);
  for (size_t i = 0; i < samples.size(); ++i) {
    s.count.add(success[i]);
    if (!samples[i].tokens.empty()) s.first_tokens[samples[i].tokens.front()].add(success[i]);
    ++rollouts_;
    tokens_generated_ += static_cast<int64_t>(samples[i].tokens.size());
    if (space == EstimateSpace::kSearch && prefix.empty()) {
      samples_.push_back(samples[i]);
      sample_success_.push_back(success[i]);
    }
  }
}

void QuerySearch::add_exact(EstimateSpace space, const std::vector<TokenId>& prefix, bool success) {
  PrefixStats& s = stats(space, prefix);
  s.count = SuccessCount{success ? 1 : 0, 1, true};
}

bool QuerySearch::advance() {
  bool progressed = true;
  while (progressed && stage_ != Stage::kDone) {
    progressed = false;
    switch (stage_) {
      case Stage::kBand:
        progressed = advance_band();
        break;
      case Stage::kSubdivide:
        progressed = advance_subdivisions();
        break;
      case Stage::kPivots: {
        bool all_done = true;
        for (PivotState& p : pivots_) {
          progressed |= advance_pivot(p);
          all_done &= p.stage == PivotStage::kDone;
        }
        if (all_done) {
          stage_ = Stage::kDone;
          progressed = true;
        }
        break;
      }
      case Stage::kDone:
        break;
    }
  }
  return done();
}

bool QuerySearch::advance_band() {
  const std::vector<TokenId> root;
  if (!ensure(EstimateSpace::kSearch, root, options_.min_rollouts)) return false;
  const SuccessCount& c = stats(EstimateSpace::kSearch, root).count;
  const Interval i = wilson_interval(c, z_);
  bool keep;
  if (i.low >= options_.band_low && i.high <= options_.band_high) {
    keep = true;
  } else if (i.high < options_.band_low || i.low > options_.band_high) {
    keep = false;
  } else if (grow(EstimateSpace::kSearch, root)) {
    return false;
  } else {
    keep = c.p() >= options_.band_low && c.p() <= options_.band_high;
  }
  p_initial_ = c.p();
  n_initial_ = c.trials;
  if (!keep) {
    stage_ = Stage::kDone;
    return true;
  }
  start_subdivisions();
  stage_ = Stage::kSubdivide;
  return true;
}

void QuerySearch::start_subdivisions() {
  // Successes and failures alternately, in sample order, identical completions once.
  std::vector<size_t> wins, losses;
  std::set<std::vector<TokenId>> seen;
  for (size_t i = 0; i < samples_.size(); ++i) {
    if (samples_[i].tokens.empty() || !seen.insert(samples_[i].tokens).second) continue;
    (sample_success_[i] ? wins : losses).push_back(i);
  }
  for (size_t k = 0; static_cast<int64_t>(analysed_.size()) < options_.completions_per_query &&
                     (k < wins.size() || k < losses.size());
       ++k) {
    for (const auto* list : {&wins, &losses}) {
      if (k < list->size() &&
          static_cast<int64_t>(analysed_.size()) < options_.completions_per_query) {
        analysed_.push_back((*list)[k]);
      }
    }
  }
  for (size_t idx : analysed_) {
    // The whole completion is finished: its value is its own grade.
    add_exact(EstimateSpace::kSearch, samples_[idx].tokens, sample_success_[idx]);
    subdivisions_.emplace_back(samples_[idx].logprobs, options_.p_gap);
  }
}

std::vector<TokenId> QuerySearch::completion_prefix(size_t completion, int64_t length) const {
  const auto& tokens = samples_[analysed_[completion]].tokens;
  return std::vector<TokenId>(tokens.begin(), tokens.begin() + length);
}

GapDecision QuerySearch::decide_gap(size_t completion, int64_t a, int64_t b) {
  const std::vector<TokenId> pa = completion_prefix(completion, a);
  const std::vector<TokenId> pb = completion_prefix(completion, b);
  const bool ready_a = ensure(EstimateSpace::kSearch, pa, options_.min_rollouts);
  const bool ready_b = ensure(EstimateSpace::kSearch, pb, options_.min_rollouts);
  if (!ready_a || !ready_b) return GapDecision::kUndecided;
  const SuccessCount& ca = stats(EstimateSpace::kSearch, pa).count;
  const SuccessCount& cb = stats(EstimateSpace::kSearch, pb).count;
  const GapDecision d = interval_gap_decision(ca, cb, options_.p_gap, z_);
  if (d != GapDecision::kUndecided) return d;
  const bool more_a = grow(EstimateSpace::kSearch, pa);
  const bool more_b = grow(EstimateSpace::kSearch, pb);
  if (more_a || more_b) return GapDecision::kUndecided;
  return exact_gap_decision(ca.p(), cb.p(), options_.p_gap);
}

bool QuerySearch::advance_subdivisions() {
  bool decided_any = false;
  bool all_finished = true;
  for (size_t c = 0; c < subdivisions_.size(); ++c) {
    if (subdivisions_[c].finished()) continue;
    subdivisions_[c].step([&](int64_t a, int64_t b) {
      const GapDecision d = decide_gap(c, a, b);
      decided_any |= d != GapDecision::kUndecided;
      return d;
    });
    all_finished &= subdivisions_[c].finished();
  }
  if (all_finished) {
    collect_pivots();
    stage_ = Stage::kPivots;
    return true;
  }
  return decided_any;
}

void QuerySearch::collect_pivots() {
  std::set<std::vector<TokenId>> seen;  // a pivot shared by two completions is reported once
  for (size_t c = 0; c < subdivisions_.size(); ++c) {
    for (int64_t pos : pivot_positions(subdivisions_[c].leaves())) {
      PivotState s;
      s.pivot.completion_index = static_cast<int64_t>(analysed_[c]);
      s.pivot.prefix = completion_prefix(c, pos);
      s.pivot.token = samples_[analysed_[c]].tokens[pos];
      std::vector<TokenId> after = s.pivot.prefix;
      after.push_back(s.pivot.token);
      if (!seen.insert(after).second) continue;
      const SuccessCount& before = stats(EstimateSpace::kSearch, s.pivot.prefix).count;
      const SuccessCount& next = stats(EstimateSpace::kSearch, after).count;
      s.pivot.p_before = before.p();
      s.pivot.p_after = next.p();
      s.pivot.n_before = before.exact ? 0 : before.trials;
      s.pivot.n_after = next.exact ? 0 : next.trials;
      s.raises = s.pivot.p_after > s.pivot.p_before;
      s.stage = options_.confirm ? PivotStage::kConfirm : PivotStage::kAlternatives;
      pivots_.push_back(std::move(s));
    }
  }
}

bool QuerySearch::advance_pivot(PivotState& state) {
  if (state.stage == PivotStage::kConfirm) return advance_confirm(state);
  if (state.stage == PivotStage::kAlternatives) return advance_alternative(state);
  return false;
}

bool QuerySearch::advance_confirm(PivotState& state) {
  std::vector<TokenId> after = state.pivot.prefix;
  after.push_back(state.pivot.token);
  const bool ready_a =
      ensure(EstimateSpace::kConfirm, state.pivot.prefix, options_.confirm_rollouts);
  const bool ready_b = ensure(EstimateSpace::kConfirm, after, options_.confirm_rollouts);
  if (!ready_a || !ready_b) return false;
  const double fresh = stats(EstimateSpace::kConfirm, after).count.p() -
                       stats(EstimateSpace::kConfirm, state.pivot.prefix).count.p();
  const bool holds = std::abs(fresh) >= options_.p_gap - 1e-12 && (fresh > 0) == state.raises;
  state.dropped = !holds;
  state.stage = holds ? PivotStage::kAlternatives : PivotStage::kDone;
  return true;
}

bool QuerySearch::advance_alternative(PivotState& state) {
  const std::vector<TokenId>& prefix = state.pivot.prefix;
  const PrefixStats& parent = stats(EstimateSpace::kSearch, prefix);
  if (state.next_candidate == 0 && state.candidates.empty()) {
    // Candidates: first tokens the rollouts at this prefix drew, other than the pivot, whose
    // rate there is on the other side of p(prefix); the most often drawn first.
    std::vector<std::pair<int64_t, TokenId>> ranked;
    for (const auto& [token, count] : parent.first_tokens) {
      const bool other_side =
          state.raises ? count.p() < state.pivot.p_before : count.p() > state.pivot.p_before;
      if (token != state.pivot.token && other_side) ranked.push_back({-count.trials, token});
    }
    std::sort(ranked.begin(), ranked.end());
    for (const auto& r : ranked) {
      if (static_cast<int64_t>(state.candidates.size()) >= options_.max_alternatives) break;
      state.candidates.push_back(r.second);
    }
  }
  if (state.next_candidate >= state.candidates.size()) {
    // No measured alternative on the other side: a pivot without a pair.
    state.stage = PivotStage::kDone;
    return true;
  }
  const TokenId x = state.candidates[state.next_candidate];
  std::vector<TokenId> alt = prefix;
  alt.push_back(x);
  PrefixStats& s = stats(EstimateSpace::kSearch, alt);
  if (!s.inherited && !finished_prefix(alt)) {
    // Rollouts from the prefix that began with x are rollouts from prefix + x.
    const SuccessCount& drawn = parent.first_tokens.at(x);
    s.count.successes += drawn.successes;
    s.count.trials += drawn.trials;
    s.inherited = true;
  }
  if (!ensure(EstimateSpace::kSearch, alt, options_.min_rollouts)) return false;
  const SuccessCount& before = parent.count;
  const Interval d = difference_interval(before, s.count, z_);  // p(alt) - p(prefix)
  bool accept;
  if (state.raises ? d.high < 0 : d.low > 0) {
    accept = true;
  } else if (state.raises ? d.low >= 0 : d.high <= 0) {
    accept = false;
  } else if (grow(EstimateSpace::kSearch, alt)) {
    return false;
  } else {
    accept = state.raises ? s.count.p() < before.p() : s.count.p() > before.p();
  }
  if (!accept) {
    ++state.next_candidate;
    return true;
  }
  const int64_t n_alt = s.count.exact ? 0 : s.count.trials;
  PtsPair& pair = state.pair;
  pair.prefix = prefix;
  if (state.raises) {
    pair.chosen = state.pivot.token;
    pair.p_chosen = state.pivot.p_after;
    pair.n_chosen = state.pivot.n_after;
    pair.rejected = x;
    pair.p_rejected = s.count.p();
    pair.n_rejected = n_alt;
  } else {
    pair.chosen = x;
    pair.p_chosen = s.count.p();
    pair.n_chosen = n_alt;
    pair.rejected = state.pivot.token;
    pair.p_rejected = state.pivot.p_after;
    pair.n_rejected = state.pivot.n_after;
  }
  state.has_pair = true;
  state.stage = PivotStage::kDone;
  return true;
}

QueryResult QuerySearch::result() const {
  QueryResult r;
  r.id = query_.id;
  r.p_initial = p_initial_;
  r.n_initial = n_initial_;
  r.kept = !analysed_.empty();
  r.rollouts = rollouts_;
  r.tokens_generated = tokens_generated_;
  for (size_t c = 0; c < analysed_.size(); ++c) {
    AnalysedCompletion a;
    a.completion_index = static_cast<int64_t>(analysed_[c]);
    a.tokens = samples_[analysed_[c]].tokens;
    a.success = sample_success_[analysed_[c]];
    for (int64_t k = 0; k <= static_cast<int64_t>(a.tokens.size()); ++k) {
      auto it = search_.find(std::vector<TokenId>(a.tokens.begin(), a.tokens.begin() + k));
      if (it != search_.end() && it->second.count.trials > 0) {
        a.estimates.push_back({k, it->second.count.p(), it->second.count.trials});
      }
    }
    a.pivot_positions = pivot_positions(subdivisions_[c].leaves());
    r.analysed.push_back(std::move(a));
  }
  for (const PivotState& p : pivots_) {
    if (p.dropped) {
      ++r.pivots_dropped;
      continue;
    }
    r.pivots.push_back(p.pivot);
    // The raising and the lowering pivot at one prefix usually give the same pair: keep it once.
    const bool repeated =
        p.has_pair && std::any_of(r.pairs.begin(), r.pairs.end(), [&](const PtsPair& q) {
          return q.prefix == p.pair.prefix && q.chosen == p.pair.chosen &&
                 q.rejected == p.pair.rejected;
        });
    if (p.has_pair && !repeated) {
      r.pairs.push_back(p.pair);
      r.pairs.back().pivot_index = static_cast<int64_t>(r.pivots.size()) - 1;
    }
  }
  return r;
}

}  // namespace align
