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

}  // namespace
}  // namespace align
