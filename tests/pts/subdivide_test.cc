// The decision half of PTS on hand-computed examples: the midpoint split, Subdivide's segments,
// both pivot directions, and the interval decisions.
#include "pts/subdivide.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"

namespace align {
namespace {

using ::testing::ElementsAre;

std::function<double(int64_t)> table(std::vector<double> p) {
  return [p](int64_t k) { return p.at(static_cast<size_t>(k)); };
}

TEST(MidpointSplit, SplitsAtHalfTheLogProbMassNotHalfTheLength) {
  // total -3.5, half -1.75; c(1) = -3.0 is the closest (|.| = 1.25; c(2) = -3.1 ...), while
  // len/2 would split at 3.
  const std::vector<float> lp = {-3.0f, -0.1f, -0.1f, -0.1f, -0.1f, -0.1f};
  EXPECT_EQ(midpoint_split(lp, 0, 6), 1);
  // The surprising token at the end: c(4) = -0.4, c(5) = -0.5; half = -(0.5 + 4) / 2 = -2.25:
  // |c(5) + 2.25| = 1.75 is the smallest, so the split isolates the last token.
  const std::vector<float> late = {-0.1f, -0.1f, -0.1f, -0.1f, -0.1f, -4.0f};
  EXPECT_EQ(midpoint_split(late, 0, 6), 5);
  // Inside a sub-segment [2, 5): c(3) = -1, c(4) = -2, total -3, half -1.5: tie, the first wins.
  const std::vector<float> mid = {-9.0f, -9.0f, -1.0f, -1.0f, -1.0f, -9.0f};
  EXPECT_EQ(midpoint_split(mid, 2, 5), 3);
  // All-zero log-probs (greedy certainties): the middle.
  EXPECT_EQ(midpoint_split(std::vector<float>(7, 0.0f), 0, 7), 3);
  EXPECT_THROW(midpoint_split(lp, 2, 3), Error);
}

TEST(Subdivide, FindsARaisingPivotAndStopsWhereThereIsNoGap) {
  // p(k) for k = 0..4, equal log-probs: [0,4) gap .4 -> split 2; [0,2) gap .4 -> split 1;
  // [0,1) no gap; [1,2) gap .4 single token -> pivot; [2,4) no gap -> one leaf.
  const std::vector<float> lp(4, -1.0f);
  const auto leaves = subdivide(lp, 0.2, table({0.5, 0.5, 0.9, 0.9, 0.9}));
  ASSERT_EQ(leaves.size(), 3u);
  EXPECT_EQ(leaves[0].begin, 0);
  EXPECT_EQ(leaves[0].end, 1);
  EXPECT_FALSE(leaves[0].pivotal);
  EXPECT_EQ(leaves[1].begin, 1);
  EXPECT_EQ(leaves[1].end, 2);
  EXPECT_TRUE(leaves[1].pivotal);
  EXPECT_EQ(leaves[2].begin, 2);
  EXPECT_EQ(leaves[2].end, 4);
  EXPECT_FALSE(leaves[2].pivotal);
  EXPECT_THAT(pivot_positions(leaves), ElementsAre(1));
}

TEST(Subdivide, FindsPivotsInBothDirections) {
  // token 0 raises .5 -> .9, token 2 lowers .9 -> .2.
  const std::vector<float> lp(4, -1.0f);
  EXPECT_THAT(pivot_positions(subdivide(lp, 0.2, table({0.5, 0.9, 0.9, 0.2, 0.2}))),
              ElementsAre(0, 2));
}

TEST(Subdivide, UsesTheLogProbMidpointToReachTheSurprisingToken) {
  // One unlikely token (index 5) carries the change. The log-prob split isolates it at once:
  // [0,6) -> [0,5) (no gap, one leaf) + [5,6) (pivot): two leaves, while len/2 would need more.
  const std::vector<float> lp = {-0.1f, -0.1f, -0.1f, -0.1f, -0.1f, -4.0f};
  const auto leaves = subdivide(lp, 0.2, table({0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.95}));
  ASSERT_EQ(leaves.size(), 2u);
  EXPECT_EQ(leaves[0].end, 5);
  EXPECT_TRUE(leaves[1].pivotal);
  EXPECT_EQ(leaves[1].begin, 5);
}

TEST(Subdivide, AGapBelowThresholdIsNotAPivot) {
  const std::vector<float> lp(2, -1.0f);
  // .5 -> .69: 0.19 < 0.2 everywhere.
  EXPECT_TRUE(pivot_positions(subdivide(lp, 0.2, table({0.5, 0.6, 0.69}))).empty());
  // Exactly the gap counts (|delta| >= p_gap).
  EXPECT_THAT(pivot_positions(subdivide(lp, 0.2, table({0.5, 0.5, 0.7}))), ElementsAre(1));
}

TEST(Subdivide, MissesAPivotThatIsUndoneWithinItsSegment) {
  // Non-monotone: p rises then falls back; the ends of [0,2) agree, so Subdivide (as specified)
  // does not look inside. The report claims completeness only for near-monotone p.
  const std::vector<float> lp(2, -1.0f);
  EXPECT_TRUE(pivot_positions(subdivide(lp, 0.2, table({0.5, 0.9, 0.5}))).empty());
}

TEST(Subdivide, SingleTokenCompletion) {
  EXPECT_THAT(pivot_positions(subdivide({-0.7f}, 0.2, table({0.4, 1.0}))), ElementsAre(0));
  EXPECT_TRUE(pivot_positions(subdivide({-0.7f}, 0.2, table({0.9, 1.0}))).empty());
}

TEST(Subdivision, WaitsForUndecidedSegments) {
  Subdivision s(std::vector<float>(4, -1.0f), 0.2);
  int calls = 0;
  EXPECT_FALSE(s.step([&](int64_t, int64_t) {
    ++calls;
    return GapDecision::kUndecided;
  }));
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(s.step([](int64_t, int64_t) { return GapDecision::kAtLeast; }));  // split
  EXPECT_TRUE(s.step([](int64_t, int64_t) { return GapDecision::kBelow; }));
  ASSERT_EQ(s.leaves().size(), 2u);
  EXPECT_EQ(s.leaves()[0].end, 2);
}

TEST(Intervals, WilsonMatchesPublishedValues) {
  // 5/10 at 95%: (0.2366, 0.7634); 0/10: (0, 0.2775); 10/10: (0.7225, 1) (Brown et al. 2001).
  const double z = normal_quantile_two_sided(0.95);
  EXPECT_NEAR(z, 1.959964, 1e-6);
  Interval i = wilson_interval({5, 10, false}, z);
  EXPECT_NEAR(i.low, 0.2366, 1e-4);
  EXPECT_NEAR(i.high, 0.7634, 1e-4);
  i = wilson_interval({0, 10, false}, z);
  EXPECT_NEAR(i.low, 0.0, 1e-12);
  EXPECT_NEAR(i.high, 0.2775, 1e-4);
  i = wilson_interval({10, 10, false}, z);
  EXPECT_NEAR(i.low, 0.7225, 1e-4);
  i = wilson_interval({1, 1, true}, z);
  EXPECT_EQ(i.low, 1.0);
  EXPECT_EQ(i.high, 1.0);
}

TEST(Intervals, NewcombeDifferenceDecidesOnlyWhenClear) {
  const double z = normal_quantile_two_sided(0.95);
  // Newcombe's worked example (1998, method 10): 56/70 vs 48/80, difference 0.2,
  // interval (0.0524, 0.3339).
  const Interval d = difference_interval({48, 80, false}, {56, 70, false}, z);
  EXPECT_NEAR(d.low, 0.0524, 1e-4);
  EXPECT_NEAR(d.high, 0.3339, 1e-4);
  // 8/64 -> 56/64: clearly above a 0.2 gap; 32/64 vs 33/64: clearly below only with many draws.
  EXPECT_EQ(interval_gap_decision({8, 64, false}, {56, 64, false}, 0.2, z), GapDecision::kAtLeast);
  EXPECT_EQ(interval_gap_decision({56, 64, false}, {8, 64, false}, 0.2, z), GapDecision::kAtLeast);
  EXPECT_EQ(interval_gap_decision({4, 8, false}, {5, 8, false}, 0.2, z), GapDecision::kUndecided);
  EXPECT_EQ(interval_gap_decision({500, 1000, false}, {510, 1000, false}, 0.2, z),
            GapDecision::kBelow);
  // An exact end (a graded completion) narrows the interval to the other end's.
  EXPECT_EQ(interval_gap_decision({10, 64, false}, {1, 1, true}, 0.2, z), GapDecision::kAtLeast);
}

}  // namespace
}  // namespace align
