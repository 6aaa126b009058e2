// An oracle's rates over an eval set (eval/oracle_rates.h), here the safety oracle's refusal rate
// on harmful items and over-refusal on benign ones, against values derived by hand.
#include "eval/oracle_rates.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"

namespace align {
namespace {

constexpr double kZ95 = 1.959963984540054;

TEST(OracleRates, MeansAndIntervalsOverItemsOfEachKind) {
  // n = 4 samples per item. Harmful items refuse 4, 2, 3 times: rates 1, 0.5, 0.75, mean 0.75
  // (= 9 refusals / 12 samples); deviations 0.25, -0.25, 0: sample sd sqrt(0.125 / 2) = 0.25,
  // half-width z * 0.25 / sqrt(3) = 0.28290, so [0.46710, 1.03290] clipped to [0.46710, 1].
  // Benign items refuse 1 and 0 times: rates 0.25, 0, mean 0.125 (= 1 / 8); sd
  // sqrt(2 * 0.125^2 / 1) = 0.17678, half-width z * 0.17678 / sqrt(2) = z * 0.125 = 0.24500, so
  // [-0.12, 0.37] clipped to [0, 0.37000].
  struct {
    RateSummary harmful, benign;
  } r{rate_summary({4, 2, 3}, 4, 0.95), rate_summary({1, 0}, 4, 0.95)};
  EXPECT_EQ(r.harmful.items, 3);
  EXPECT_EQ(r.harmful.samples, 12);
  EXPECT_EQ(r.harmful.counted, 9);
  EXPECT_NEAR(r.harmful.value.mean, 0.75, 1e-12);
  EXPECT_NEAR(r.harmful.value.low, 0.75 - kZ95 * 0.25 / std::sqrt(3.0), 1e-9);
  EXPECT_NEAR(r.harmful.value.low, 0.4671036, 1e-6);
  EXPECT_EQ(r.harmful.value.high, 1.0);
  EXPECT_FALSE(r.harmful.has_wilson);
  EXPECT_EQ(r.benign.items, 2);
  EXPECT_EQ(r.benign.samples, 8);
  EXPECT_EQ(r.benign.counted, 1);
  EXPECT_NEAR(r.benign.value.mean, 0.125, 1e-12);
  EXPECT_EQ(r.benign.value.low, 0.0);
  EXPECT_NEAR(r.benign.value.high, 0.125 + kZ95 * 0.125, 1e-9);
  EXPECT_NEAR(r.benign.value.high, 0.3699955, 1e-6);

  const nlohmann::json j = to_json(r.harmful, "refusals");
  EXPECT_EQ(j.at("items"), 3);
  EXPECT_EQ(j.at("samples"), 12);
  EXPECT_EQ(j.at("refusals"), 9);
  EXPECT_NEAR(j.at("mean").get<double>(), 0.75, 1e-12);
  EXPECT_FALSE(j.contains("wilson_low"));
}

TEST(OracleRates, OneSamplePerItemAddsAWilsonIntervalOverItems) {
  // 8 harmful items, 6 refused: Wilson at z: p = 0.75, d = 1 + z^2 / 8,
  // centre (p + z^2 / 16) / d, half z * sqrt(p (1 - p) / 8 + z^2 / 256) / d: [0.40928, 0.92852].
  // 2 benign items, 1 refused: [0.09453, 0.90547].
  struct {
    RateSummary harmful, benign;
  } r{rate_summary({1, 1, 0, 1, 1, 0, 1, 1}, 1, 0.95), rate_summary({1, 0}, 1, 0.95)};
  ASSERT_TRUE(r.harmful.has_wilson);
  EXPECT_NEAR(r.harmful.value.mean, 0.75, 1e-12);
  EXPECT_NEAR(r.harmful.wilson.low, 0.4092754, 1e-6);
  EXPECT_NEAR(r.harmful.wilson.high, 0.9285208, 1e-6);
  ASSERT_TRUE(r.benign.has_wilson);
  EXPECT_NEAR(r.benign.value.mean, 0.5, 1e-12);
  EXPECT_NEAR(r.benign.wilson.low, 0.0945312, 1e-6);
  EXPECT_NEAR(r.benign.wilson.high, 0.9054688, 1e-6);
  const nlohmann::json j = to_json(r.benign, "refusals");
  EXPECT_NEAR(j.at("wilson_low").get<double>(), 0.0945312, 1e-6);
  EXPECT_NEAR(j.at("wilson_high").get<double>(), 0.9054688, 1e-6);
}

TEST(OracleRates, ARateWithoutItemsHasNone) {
  const RateSummary r = rate_summary({}, 2, 0.95);
  EXPECT_EQ(r.items, 0);
  EXPECT_EQ(r.samples, 0);
  EXPECT_EQ(r.counted, 0);
}

TEST(OracleRates, RejectsInconsistentCounts) {
  EXPECT_THROW(rate_summary({3}, 2, 0.95), InputError);
  EXPECT_THROW(rate_summary({-1}, 2, 0.95), InputError);
  EXPECT_THROW(rate_summary({0}, 0, 0.95), InputError);
}

}  // namespace
}  // namespace align
