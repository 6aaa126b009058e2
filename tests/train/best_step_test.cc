#include "train/best_step.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace align {
namespace {

TEST(BestStep, HighestMeanWinsTiesGoToTheEarlierStep) {
  BestStep evals("pass@1", true);
  EXPECT_FALSE(evals.best().has_value());
  EXPECT_TRUE(evals.add({0, 0.5, 0.4, 0.6}));      // the first is always the best
  EXPECT_TRUE(evals.add({10, 0.8, 0.7, 0.9}));     // better
  EXPECT_FALSE(evals.add({20, 0.8, 0.75, 0.85}));  // a tie: the earlier step stays
  EXPECT_FALSE(evals.add({30, 0.6, 0.5, 0.7}));
  EXPECT_EQ(evals.best()->step, 10);
  EXPECT_EQ(evals.verdict(30, true),
            "step 10 kept: pass@1 0.800 [0.700, 0.900], the best of 4 evals (higher is better); "
            "the last step (30) had 0.600 [0.500, 0.700]");
  EXPECT_NE(evals.verdict(30, false).find("is the result (dpo.eval.keep_best is false)"),
            std::string::npos);
}

TEST(BestStep, LowerIsBetterForRatesThatSaySo) {
  BestStep evals("over_refusal_rate_benign", false);
  evals.add({0, 0.3, 0.2, 0.4});
  EXPECT_TRUE(evals.add({5, 0.1, 0.0, 0.2}));
  EXPECT_FALSE(evals.add({10, 0.2, 0.1, 0.3}));
  EXPECT_EQ(evals.best()->step, 5);
  EXPECT_NE(evals.verdict(5, true).find("it is the last step"), std::string::npos);
}

// The record goes into checkpoints as JSON and back; a resumed run drops the evals it replays.
TEST(BestStep, RoundTripsAndTruncatesForResume) {
  BestStep evals("pass@1", true);
  evals.add({0, 0.5, 0.4, 0.6});
  evals.add({10, 0.9, 0.8, 1.0});
  evals.add({20, 0.7, 0.6, 0.8});
  BestStep back("pass@1", true);
  back.restore(evals.to_json(), "ckpt");
  EXPECT_EQ(back.to_json(), evals.to_json());
  back.truncate_after(5);
  ASSERT_EQ(back.history().size(), 1u);
  EXPECT_EQ(back.best()->step, 0);
  const nlohmann::json summary = evals.summary(20, true);
  EXPECT_EQ(summary.at("step").get<int64_t>(), 10);
  EXPECT_EQ(summary.at("value").get<double>(), 0.9);
  EXPECT_EQ(summary.at("last_step").get<int64_t>(), 20);
  EXPECT_TRUE(summary.at("kept").get<bool>());

  BestStep other("refusal_rate_harmful", true);
  EXPECT_THROW(other.restore(evals.to_json(), "ckpt"), InputError);  // another metric
  EXPECT_THROW(back.restore(nlohmann::json{{"metric", "pass@1"}}, "ckpt"), InputError);
}

// eval.max_clipped_ratio: a step whose samples hit max_new_tokens too often is never the best
// while another is within the limit, however good its metric (a regex can find the answer in a
// completion that never stops).
TEST(BestStep, StepsOverMaxClippedRatioAreNeverTheBest) {
  BestStep evals("pass@1", true, 0.2);
  EXPECT_TRUE(evals.add({0, 0.25, 0.1, 0.4, 0.05}));
  EXPECT_TRUE(evals.eligible(evals.history()[0]));
  EXPECT_FALSE(evals.add({10, 0.60, 0.5, 0.7, 0.55}));  // the best pass@1, but clipped
  EXPECT_FALSE(evals.eligible(evals.history()[1]));
  EXPECT_EQ(evals.best()->step, 0);
  EXPECT_TRUE(evals.add({20, 0.40, 0.3, 0.5, 0.2}));  // at the limit: eligible
  EXPECT_EQ(evals.best()->step, 20);
  EXPECT_EQ(evals.verdict(20, true),
            "step 20 kept: pass@1 0.400 [0.300, 0.500], the best of 3 evals (higher is better); "
            "passed over for completions/clipped_ratio above 0.2: step 10 (0.550); it is the "
            "last step");
  const nlohmann::json j = evals.summary(20, true);
  EXPECT_EQ(j.at("max_clipped_ratio").get<double>(), 0.2);
  EXPECT_EQ(j.at("clipped_ratio").get<double>(), 0.2);
  EXPECT_FALSE(j.at("evals")[1].at("eligible").get<bool>());
  EXPECT_EQ(j.at("evals")[1].at("clipped_ratio").get<double>(), 0.55);
  // The record comes back with its clipped ratios; the limit is the config's.
  BestStep back("pass@1", true, 0.2);
  back.restore(evals.to_json(), "ckpt");
  EXPECT_EQ(back.to_json(), evals.to_json());
  BestStep unlimited("pass@1", true);
  unlimited.restore(evals.to_json(), "ckpt");
  EXPECT_EQ(unlimited.best()->step, 10);  // the default 1 limits nothing
  // A record of an older run (no clipped_ratio) reads as 0.
  nlohmann::json old = evals.to_json();
  for (nlohmann::json& e : old["evals"])
    e.erase("clipped_ratio");
  back.restore(old, "ckpt");
  EXPECT_EQ(back.best()->step, 10);
}

// When every eval is over the limit, the fewest clipped wins, then the metric, then the earlier.
TEST(BestStep, WhenEveryStepIsOverTheLimitTheLeastClippedWins) {
  BestStep evals("pass@1", true, 0.1);
  evals.add({0, 0.5, 0.4, 0.6, 0.3});
  evals.add({10, 0.9, 0.8, 1.0, 0.6});
  evals.add({20, 0.7, 0.6, 0.8, 0.3});
  evals.add({30, 0.7, 0.6, 0.8, 0.3});
  EXPECT_EQ(evals.best()->step, 20);
  EXPECT_EQ(evals.verdict(30, true),
            "step 20 kept: pass@1 0.700 [0.600, 0.800]; none of 4 evals (higher is better) had "
            "completions/clipped_ratio within max_clipped_ratio 0.1, and it clipped the fewest "
            "(0.300); the last step (30) had 0.700 [0.600, 0.800]");
}

}  // namespace
}  // namespace align
