// pass@k, the chance that at least one of k samples solves an item, estimated without bias from n
// samples of which c are correct (Chen et al. 2021, "Evaluating Large Language Models Trained on
// Code", eq. 1):
//   pass@k = 1 - C(n - c, k) / C(n, k)
// computed as the product 1 - prod_{i = n-c+1}^{n} (1 - k / i), which never forms a binomial
// coefficient and so stays exact to rounding for any n (C(200, 100) alone overflows a double's
// exact integers). When n - c < k every k-subset holds a correct sample: pass@k = 1.
//
// The interval over a task set: items differ in difficulty, and samples of one item are correlated
// (they share the prompt), so pooling all n * items completions into one binomial (a Wilson
// interval on the pooled count) understates the uncertainty. The unit of replication is the item:
// mean_interval() takes the per-item pass@k values and returns their mean +- z * s / sqrt(m)
// (s the sample standard deviation over the m items, z the normal quantile for the confidence),
// clipped to [0, 1]. It accounts for both the item-to-item spread and the sampling noise within
// items. It is a normal interval: with few items (m < ~30) it is optimistic; with m < 2 there is
// no spread to measure and the interval is [0, 1].
#pragma once

#include <cstdint>
#include <vector>

namespace align {

// Unbiased pass@k from n samples with c correct. Needs 0 <= c <= n and 1 <= k <= n; throws
// InputError otherwise.
double pass_at_k(int64_t n, int64_t c, int64_t k);

struct MeanInterval {
  double mean = 0, low = 0, high = 1;
};

// Mean of `values` (one per item, each in [0, 1]) with a normal interval at `confidence` from the
// standard error of the mean; see above. Empty input: {0, 0, 1}.
MeanInterval mean_interval(const std::vector<double>& values, double confidence);

}  // namespace align
