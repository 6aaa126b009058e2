// p(success | prefix) as counted from graded rollouts, with a Wilson score interval for adaptive
// sampling (Wilson 1927; Brown, Cai & DasGupta 2001 recommend it over the normal interval for
// small counts and p near 0 or 1).
#pragma once

#include <cstdint>

namespace align {

struct Interval {
  double low = 0, high = 1;
};

struct SuccessCount {
  int64_t successes = 0;
  int64_t trials = 0;
  // The prefix is a finished completion (it ends in a stop token or fills max_new_tokens): it was
  // graded once and its value is known, not estimated.
  bool exact = false;

  double p() const { return trials > 0 ? static_cast<double>(successes) / trials : 0.5; }
  void add(bool success) {
    successes += success ? 1 : 0;
    ++trials;
  }
};

// Wilson score interval for `count` at normal quantile z (1.96 for 95%); [0, 1] with no trials and
// [p, p] for an exact count.
Interval wilson_interval(const SuccessCount& count, double z);

// The two-sided normal quantile for a confidence level in (0, 1): 0.95 -> 1.95996...
double normal_quantile_two_sided(double confidence);

}  // namespace align
