// The decision half of Pivotal Token Search (docs/pts.md; Phi-4 report section 4.3):
// which tokens of one sampled completion are pivotal, given estimates of p(success | prefix).
// Nothing here samples or grades; the estimation half (pts/pivotal_search.h) supplies decisions.
//
// Positions: a completion T has tokens t_0..t_{n-1}; "prefix k" is t_0..t_{k-1} (prefix 0 is the
// bare query, prefix n the whole completion). A segment [begin, end) is T's tokens begin..end-1
// read after prefix `begin`.
//
// Subdivide(prefix a, segment [a, b)):
//   |T| <= 1, or |p(b) - p(a)| < p_gap            -> [a, b) is a leaf
//   otherwise split at m = midpoint_split(...)    -> Subdivide([a, m)) then Subdivide([m, b))
// Pivots: every single-token leaf [a, a+1) whose |p(a+1) - p(a)| >= p_gap, in completion order,
// in both directions (raising and lowering p).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "eval/success_estimate.h"

namespace align {

struct Segment {
  int64_t begin = 0, end = 0;
  bool pivotal = false;  // a single-token leaf whose |delta p| >= p_gap
};

// The split point of [begin, end) (end - begin >= 2): with c(m) = sum of logprobs[begin..m-1], the
// m in [begin + 1, end - 1] whose c(m) is closest to c(end) / 2 (the first such m on ties), so
// both halves carry about half of the segment's log-probability mass: low-probability (surprising)
// tokens get short segments. When every log-prob is 0 the split is at the middle.
int64_t midpoint_split(const std::vector<float>& logprobs, int64_t begin, int64_t end);

enum class GapDecision {
  kBelow,     // |p(b) - p(a)| < p_gap
  kAtLeast,   // |p(b) - p(a)| >= p_gap
  kUndecided  // not yet: the caller is gathering more rollouts
};

// Runs Subdivide over one completion as a resumable state machine, so the estimates of many
// completions (and queries) can be gathered in one batch between steps.
class Subdivision {
 public:
  Subdivision(std::vector<float> logprobs, double p_gap);

  // Asks `decide(a, b)` about every open segment [a, b): leaves and splits those it decides, keeps
  // the undecided ones open. Returns true when no segment is open any more.
  bool step(const std::function<GapDecision(int64_t a, int64_t b)>& decide);

  bool finished() const { return open_.empty(); }
  // The leaves in completion order (complete once finished()).
  std::vector<Segment> leaves() const;
  int64_t length() const { return static_cast<int64_t>(logprobs_.size()); }

 private:
  std::vector<float> logprobs_;  // [n] log-probs of the completion's tokens
  double p_gap_;
  std::vector<Segment> open_;
  std::vector<Segment> leaves_;
};

// The decision from exact values: kAtLeast when |p_b - p_a| >= p_gap (up to 1e-12).
GapDecision exact_gap_decision(double p_a, double p_b, double p_gap);

// The decision from rollout counts: the Newcombe (1998, method 10) score interval for
// p(b) - p(a) at normal quantile z, built from the two Wilson intervals, decides when it lies
// wholly beyond +-p_gap (kAtLeast) or wholly inside (kBelow); kUndecided otherwise.
GapDecision interval_gap_decision(const SuccessCount& a, const SuccessCount& b, double p_gap,
                                  double z);

// The Newcombe interval for p(b) - p(a).
Interval difference_interval(const SuccessCount& a, const SuccessCount& b, double z);

// Subdivide with exactly known p(prefix k) = p(k), run to the end: the reference the tests check
// the batched search against, and the algorithm in its plainest form.
std::vector<Segment> subdivide(const std::vector<float>& logprobs, double p_gap,
                               const std::function<double(int64_t)>& p);

// The pivotal single-token leaves' positions (token index = the leaf's begin).
std::vector<int64_t> pivot_positions(const std::vector<Segment>& leaves);

}  // namespace align
