#include "pts/subdivide.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "common/error.h"

namespace align {

int64_t midpoint_split(const std::vector<float>& logprobs, int64_t begin, int64_t end) {
  if (begin < 0 || end > static_cast<int64_t>(logprobs.size()) || end - begin < 2) {
    throw Error("midpoint_split: segment [" + std::to_string(begin) + ", " + std::to_string(end) +
                ") of " + std::to_string(logprobs.size()) + " tokens cannot be split");
  }
  double total = 0;
  for (int64_t i = begin; i < end; ++i)
    total += logprobs[i];
  if (total == 0) return begin + (end - begin) / 2;
  const double half = total / 2;
  int64_t best = begin + 1;
  double best_gap = INFINITY;
  double cumulative = 0;
  for (int64_t m = begin + 1; m < end; ++m) {
    cumulative += logprobs[m - 1];
    const double gap = std::abs(cumulative - half);
    if (gap < best_gap) {
      best_gap = gap;
      best = m;
    }
  }
  return best;
}

Subdivision::Subdivision(std::vector<float> logprobs, double p_gap)
    : logprobs_(std::move(logprobs)), p_gap_(p_gap) {
  if (!logprobs_.empty()) open_.push_back({0, length(), false});
}

bool Subdivision::step(const std::function<GapDecision(int64_t, int64_t)>& decide) {
  std::vector<Segment> still_open;
  // Children are decided in the next step, once the caller has estimated p(split point).
  for (const Segment& s : open_) {
    const GapDecision d = decide(s.begin, s.end);
    if (d == GapDecision::kUndecided) {
      still_open.push_back(s);
    } else if (s.end - s.begin <= 1) {
      leaves_.push_back({s.begin, s.end, d == GapDecision::kAtLeast});
    } else if (d == GapDecision::kBelow) {
      leaves_.push_back({s.begin, s.end, false});
    } else {
      const int64_t m = midpoint_split(logprobs_, s.begin, s.end);
      still_open.push_back({s.begin, m, false});
      still_open.push_back({m, s.end, false});
    }
  }
  open_ = std::move(still_open);
  return finished();
}

std::vector<Segment> Subdivision::leaves() const {
  std::vector<Segment> sorted = leaves_;
  std::sort(sorted.begin(), sorted.end(),
            [](const Segment& x, const Segment& y) { return x.begin < y.begin; });
  return sorted;
}

GapDecision exact_gap_decision(double p_a, double p_b, double p_gap) {
  return std::abs(p_b - p_a) >= p_gap - 1e-12 ? GapDecision::kAtLeast : GapDecision::kBelow;
}

Interval difference_interval(const SuccessCount& a, const SuccessCount& b, double z) {
  const Interval ia = wilson_interval(a, z);
  const Interval ib = wilson_interval(b, z);
  const double pa = a.p(), pb = b.p();
  const double d = pb - pa;
  const double below = std::sqrt((pb - ib.low) * (pb - ib.low) + (ia.high - pa) * (ia.high - pa));
  const double above = std::sqrt((ib.high - pb) * (ib.high - pb) + (pa - ia.low) * (pa - ia.low));
  return {d - below, d + above};
}

GapDecision interval_gap_decision(const SuccessCount& a, const SuccessCount& b, double p_gap,
                                  double z) {
  const Interval d = difference_interval(a, b, z);
  if (d.low >= p_gap || d.high <= -p_gap) return GapDecision::kAtLeast;
  if (d.low > -p_gap && d.high < p_gap) return GapDecision::kBelow;
  return GapDecision::kUndecided;
}

std::vector<Segment> subdivide(const std::vector<float>& logprobs, double p_gap,
                               const std::function<double(int64_t)>& p) {
  Subdivision s(logprobs, p_gap);
  while (!s.step([&](int64_t a, int64_t b) { return exact_gap_decision(p(a), p(b), p_gap); })) {
  }
  return s.leaves();
}

std::vector<int64_t> pivot_positions(const std::vector<Segment>& leaves) {
  std::vector<int64_t> positions;
  for (const Segment& s : leaves)
    if (s.pivotal) positions.push_back(s.begin);
  return positions;
}

}  // namespace align
