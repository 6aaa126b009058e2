#include "eval/pass_at_k.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"
#include "eval/success_estimate.h"

namespace align {

double pass_at_k(int64_t n, int64_t c, int64_t k) {
  if (n < 1 || c < 0 || c > n || k < 1 || k > n) {
    throw InputError("pass@k: expected 0 <= c <= n and 1 <= k <= n, got n=" + std::to_string(n) +
                     " c=" + std::to_string(c) + " k=" + std::to_string(k));
  }
  if (n - c < k) return 1.0;
  // C(n-c, k) / C(n, k) = prod_{i=n-c+1}^{n} (1 - k / i)
  double fail = 1.0;
  for (int64_t i = n - c + 1; i <= n; ++i)
    fail *= static_cast<double>(i - k) / static_cast<double>(i);  // 1 - k/i, one rounding
  return 1.0 - fail;
}

MeanInterval mean_interval(const std::vector<double>& values, double confidence) {
  MeanInterval r;
  const size_t m = values.size();
  if (m == 0) return r;
  double sum = 0;
  for (double v : values)
    sum += v;
  r.mean = sum / static_cast<double>(m);
  if (m < 2) return {r.mean, 0.0, 1.0};
  double squares = 0;
  for (double v : values)
    squares += (v - r.mean) * (v - r.mean);
  const double sd = std::sqrt(squares / static_cast<double>(m - 1));
  const double half =
      normal_quantile_two_sided(confidence) * sd / std::sqrt(static_cast<double>(m));
  r.low = std::max(0.0, r.mean - half);
  r.high = std::min(1.0, r.mean + half);
  return r;
}

}  // namespace align
