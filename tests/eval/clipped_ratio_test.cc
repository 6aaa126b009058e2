// completions/clipped_ratio (eval/query_eval.h) from finish reasons, derived by hand.
#include <gtest/gtest.h>

#include "eval/query_eval.h"

namespace align {
namespace {

TEST(ClippedRatio, IsTheShareOfSamplesWithoutAStopToken) {
  // The broken run: 164 of 320 samples hit max_new_tokens.
  EXPECT_DOUBLE_EQ(clipped_ratio({{"stop", 156}, {"length", 164}}), 164.0 / 320.0);
  EXPECT_DOUBLE_EQ(clipped_ratio({{"length", 3}}), 1.0);
  EXPECT_DOUBLE_EQ(clipped_ratio({{"stop", 7}}), 0.0);
  EXPECT_DOUBLE_EQ(clipped_ratio({{"stop", 0}, {"length", 0}}), 0.0);  // no samples
  EXPECT_DOUBLE_EQ(clipped_ratio({}), 0.0);
}

}  // namespace
}  // namespace align
