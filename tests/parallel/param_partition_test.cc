// Parameter ownership for sharded optimizer state: contiguous runs of about equal size.
#include "parallel/param_partition.h"

#include <gtest/gtest.h>

namespace align {
namespace {

TEST(ParamPartition, EqualParametersSplitEvenly) {
  EXPECT_EQ(partition_contiguous({10, 10, 10, 10}, 2), (std::vector<int>{0, 0, 1, 1}));
  EXPECT_EQ(partition_contiguous({10, 10, 10, 10, 10, 10}, 3),
            (std::vector<int>{0, 0, 1, 1, 2, 2}));
}

TEST(ParamPartition, RunsStartWhereTheirShareBegins) {
  // Total 12: rank 1's share starts at element 6, rank 2's at 8 (of world 3: 4 and 8).
  // Starts: 0, 5, 6, 7, 11 -> owners 0, 1 (5*3/12 = 1), 1, 1, 2.
  EXPECT_EQ(partition_contiguous({5, 1, 1, 4, 1}, 3), (std::vector<int>{0, 1, 1, 1, 2}));
}

TEST(ParamPartition, OneHugeParameterLeavesRanksEmpty) {
  EXPECT_EQ(partition_contiguous({100, 1, 1}, 4), (std::vector<int>{0, 3, 3}));
  EXPECT_EQ(partition_contiguous({1, 1}, 3), (std::vector<int>{0, 1}));
}

TEST(ParamPartition, OneRankOwnsEverything) {
  EXPECT_EQ(partition_contiguous({3, 4, 5}, 1), (std::vector<int>{0, 0, 0}));
  EXPECT_TRUE(partition_contiguous({}, 4).empty());
}

TEST(ParamPartition, OwnersAreNonDecreasingAndInRange) {
  std::vector<int64_t> numels;
  for (int i = 1; i <= 50; ++i)
    numels.push_back((i * 37) % 23 + 1);
  for (int world : {2, 3, 7, 8}) {
    const std::vector<int> owner = partition_contiguous(numels, world);
    for (size_t i = 0; i < owner.size(); ++i) {
      EXPECT_GE(owner[i], 0);
      EXPECT_LT(owner[i], world);
      if (i > 0) {
        EXPECT_GE(owner[i], owner[i - 1]);
      }
    }
    EXPECT_EQ(owner.back(), world - 1);
  }
}

}  // namespace
}  // namespace align
