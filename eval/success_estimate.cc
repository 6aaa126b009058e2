#include "eval/success_estimate.h"

#include <algorithm>
#include <cmath>

namespace align {

Interval wilson_interval(const SuccessCount& count, double z) {
  if (count.exact) return {count.p(), count.p()};
  if (count.trials <= 0) return {0.0, 1.0};
  const double n = static_cast<double>(count.trials);
  const double p = count.p();
  const double z2 = z * z;
  const double center = (p + z2 / (2 * n)) / (1 + z2 / n);
  const double half = z / (1 + z2 / n) * std::sqrt(p * (1 - p) / n + z2 / (4 * n * n));
  return {std::max(0.0, center - half), std::min(1.0, center + half)};
}

double normal_quantile_two_sided(double confidence) {
  // Solve Phi(z) = (1 + confidence) / 2 by bisection on erfc: exact to ~1e-12, no tables.
  const double target = (1.0 - confidence) / 2.0;  // upper tail mass
  double lo = 0.0, hi = 40.0;
  for (int i = 0; i < 200; ++i) {
    const double mid = (lo + hi) / 2;
    if (0.5 * std::erfc(mid / std::sqrt(2.0)) > target) {
      lo = mid;
    } else {
      hi = mid;
    }
  }
  return (lo + hi) / 2;
}

}  // namespace align
