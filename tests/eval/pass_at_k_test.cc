// The unbiased pass@k estimator (Chen et al. 2021) against values derived by hand, and the
// across-items interval.
#include "eval/pass_at_k.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"

namespace align {
namespace {

TEST(PassAtK, HandDerivedValues) {
  EXPECT_NEAR(pass_at_k(5, 2, 1), 0.4, 1e-12);                  // c / n
  EXPECT_NEAR(pass_at_k(5, 2, 2), 1.0 - 3.0 / 10.0, 1e-12);     // 1 - C(3,2)/C(5,2) = 0.7
  EXPECT_NEAR(pass_at_k(5, 2, 3), 1.0 - 1.0 / 10.0, 1e-12);     // 1 - C(3,3)/C(5,3) = 0.9
  EXPECT_NEAR(pass_at_k(10, 3, 4), 1.0 - 35.0 / 210.0, 1e-12);  // 1 - C(7,4)/C(10,4)
  EXPECT_EQ(pass_at_k(5, 0, 1), 0.0);
  EXPECT_EQ(pass_at_k(5, 0, 5), 0.0);
  EXPECT_EQ(pass_at_k(5, 5, 1), 1.0);
  EXPECT_EQ(pass_at_k(5, 2, 4), 1.0);  // n - c = 3 < k: every 4-subset holds a correct sample
  EXPECT_EQ(pass_at_k(1, 1, 1), 1.0);
}

TEST(PassAtK, PassAtOneIsTheFractionCorrect) {
  for (int64_t n = 1; n <= 40; ++n)
    for (int64_t c = 0; c <= n; ++c)
      EXPECT_NEAR(pass_at_k(n, c, 1), static_cast<double>(c) / n, 1e-12) << n << " " << c;
}

TEST(PassAtK, LargeNIsStableAndMonotoneInK) {
  // C(1000, 500) overflows a double; the product form does not form it.
  // n=1000, c=500, k=2: 1 - (500*499)/(1000*999).
  EXPECT_NEAR(pass_at_k(1000, 500, 2), 1.0 - (500.0 * 499.0) / (1000.0 * 999.0), 1e-12);
  // c=1: 1 - (n-k)/n = k/n.
  EXPECT_NEAR(pass_at_k(1000, 1, 100), 0.1, 1e-12);
  double previous = 0;
  for (int64_t k = 1; k <= 200; ++k) {
    const double p = pass_at_k(1000, 10, k);
    EXPECT_TRUE(std::isfinite(p));
    EXPECT_GE(p, previous);
    EXPECT_LE(p, 1.0);
    previous = p;
  }
}

TEST(PassAtK, RejectsImpossibleCounts) {
  EXPECT_THROW(pass_at_k(5, 2, 6), InputError);
  EXPECT_THROW(pass_at_k(5, 2, 0), InputError);
  EXPECT_THROW(pass_at_k(5, 6, 1), InputError);
  EXPECT_THROW(pass_at_k(0, 0, 1), InputError);
}

TEST(PassAtK, MeanIntervalFromTheSpreadAcrossItems) {
  // values 0, 1, 0.5, 0.5: mean 0.5, sample sd sqrt(0.5/3), se = sd / 2.
  const MeanInterval r = mean_interval({0.0, 1.0, 0.5, 0.5}, 0.95);
  const double half = 1.959963984540054 * std::sqrt(0.5 / 3) / 2;
  EXPECT_NEAR(r.mean, 0.5, 1e-12);
  EXPECT_NEAR(r.low, 0.5 - half, 1e-9);
  EXPECT_NEAR(r.high, 0.5 + half, 1e-9);
  // Clipped to [0, 1].
  const MeanInterval clipped = mean_interval({1.0, 1.0, 1.0, 0.0}, 0.99);
  EXPECT_LT(clipped.low, clipped.mean);
  EXPECT_EQ(clipped.high, 1.0);
  // One item: no spread to measure.
  const MeanInterval one = mean_interval({0.25}, 0.95);
  EXPECT_EQ(one.mean, 0.25);
  EXPECT_EQ(one.low, 0.0);
  EXPECT_EQ(one.high, 1.0);
}

}  // namespace
}  // namespace align
