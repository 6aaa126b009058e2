// Decode-step bucketing: bucket sizes by hand, padding rows that write nothing and read one key.
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

TEST(DecodeBuckets, PaddingRowsWriteNothingAndAreMasked) {
  const PaddedDecodeRows p = pad_decode_rows({40, 7, 12}, {9, 0, 30});
  EXPECT_EQ(p.rows, 3);
  EXPECT_EQ(p.bucket, 4);
  EXPECT_EQ(p.slots, (std::vector<int64_t>{40, 7, 12, -1}));
  EXPECT_EQ(p.positions, (std::vector<int64_t>{9, 0, 30, 0}));
  EXPECT_EQ(p.context_lens, (std::vector<int64_t>{10, 1, 31, 1}));
  EXPECT_EQ(p.valid, (std::vector<bool>{true, true, true, false}));
}

TEST(DecodeBuckets, ExactBucketHasNoPadding) {
  const PaddedDecodeRows p = pad_decode_rows({1, 2}, {3, 4});
  EXPECT_EQ(p.bucket, 2);
  EXPECT_EQ(p.valid, (std::vector<bool>{true, true}));
}

TEST(DecodeBuckets, RejectsBadInputs) {
  EXPECT_THROW(pad_decode_rows({}, {}), InputError);
  EXPECT_THROW(pad_decode_rows({1, 2}, {3}), InputError);
  EXPECT_THROW(pad_decode_rows({-1}, {3}), InputError);
  EXPECT_THROW(pad_decode_rows({1}, {-3}), InputError);
}

}  // namespace
}  // namespace align
