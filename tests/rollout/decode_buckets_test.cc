// Decode-step bucket sizes by hand (the padded steps themselves: decode_graphs_test.cc).
#include "rollout/decode_buckets.h"

#include <gtest/gtest.h>

#include "common/error.h"

namespace align {
namespace {

TEST(DecodeBuckets, RoundsUpToThePowersOfTwoUpTo256) {
  EXPECT_EQ(decode_bucket(1), 1);
  EXPECT_EQ(decode_bucket(2), 2);
  EXPECT_EQ(decode_bucket(3), 4);
  EXPECT_EQ(decode_bucket(5), 8);
  EXPECT_EQ(decode_bucket(17), 32);
  EXPECT_EQ(decode_bucket(128), 128);
  EXPECT_EQ(decode_bucket(129), 256);
  EXPECT_EQ(decode_bucket(256), 256);
  EXPECT_EQ(decode_bucket(257), 257);  // past the largest bucket: not bucketed
  EXPECT_THROW(decode_bucket(0), InputError);
}

}  // namespace
}  // namespace align
