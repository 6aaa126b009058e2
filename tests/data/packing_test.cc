// Packing examples into rows: positions restart, one segment per example, shifted targets that
// never cross an example boundary; best-fit decreasing bins; padding to a common length.
#include "data/packing.h"

#include <gtest/gtest.h>

#include <random>

#include "common/error.h"

namespace align {
namespace {

using Ids = std::vector<int64_t>;

SftExample example(std::vector<TokenId> ids, std::vector<uint8_t> mask) {
  return {std::move(ids), std::move(mask)};
}

TEST(Packing, RowByHand) {
  const std::vector<SftExample> examples = {
      example({10, 11, 12}, {0, 1, 1}),
      example({20, 21}, {0, 1}),
      example({30, 31, 32, 33}, {0, 0, 1, 0}),
  };
  const PackedRow row = pack_examples(examples, {0, 1, 2});
  EXPECT_EQ(row.tokens, (Ids{10, 11, 12, 20, 21, 30, 31, 32, 33}));
  EXPECT_EQ(row.positions, (Ids{0, 1, 2, 0, 1, 0, 1, 2, 3}));
  EXPECT_EQ(row.segments, (Ids{0, 0, 0, 1, 1, 2, 2, 2, 2}));
  const int64_t x = kIgnoreTarget;
  EXPECT_EQ(row.targets, (Ids{11, 12, x, 21, x, x, 32, x, x}));
  EXPECT_EQ(row.num_examples, 3);

  // Order follows the indices.
  const PackedRow swapped = pack_examples(examples, {1, 0});
  EXPECT_EQ(swapped.tokens, (Ids{20, 21, 10, 11, 12}));
  EXPECT_EQ(swapped.targets, (Ids{21, x, 11, 12, x}));
  EXPECT_THROW(pack_examples(examples, {3}), InputError);
  EXPECT_THROW(pack_examples({example({1, 2}, {0})}, {0}), InputError);
}

TEST(Packing, BestFitDecreasingByHand) {
  // Sorted: 5 (#0), 4 (#2), 3 (#1), 2 (#3), 1 (#4); capacity 6.
  // 5 -> new bin A (1 left); 4 -> new bin B (2 left); 3 fits nowhere -> new bin C (3 left);
  // 2 -> fullest bin it fits: B (0 left); 1 -> A (0 left).
  const auto bins = plan_packing({5, 3, 4, 2, 1}, 6);
  EXPECT_EQ(bins, (std::vector<Ids>{{0, 4}, {2, 3}, {1}}));
  // Ties in length go in index order.
  EXPECT_EQ(plan_packing({2, 2, 2}, 4), (std::vector<Ids>{{0, 1}, {2}}));
  EXPECT_TRUE(plan_packing({}, 4).empty());
  EXPECT_THROW(plan_packing({2, 5}, 4), InputError);
  EXPECT_THROW(plan_packing({0}, 4), InputError);
}

TEST(Packing, BatchPadsRowsWithTheirOwnSegment) {
  const std::vector<SftExample> examples = {
      example({10, 11, 12}, {0, 1, 1}),
      example({20, 21}, {0, 1}),
      example({30, 31}, {0, 1}),
  };
  const Batch batch =
      make_batch({pack_examples(examples, {0, 1}), pack_examples(examples, {2})}, /*pad_id=*/7);
  EXPECT_EQ(batch.rows, 2);
  EXPECT_EQ(batch.seq_len, 5);
  const int64_t x = kIgnoreTarget;
  EXPECT_EQ(batch.tokens, (Ids{10, 11, 12, 20, 21, /**/ 30, 31, 7, 7, 7}));
  EXPECT_EQ(batch.positions, (Ids{0, 1, 2, 0, 1, /**/ 0, 1, 0, 1, 2}));
  EXPECT_EQ(batch.segments, (Ids{0, 0, 0, 1, 1, /**/ 0, 0, 1, 1, 1}));
  EXPECT_EQ(batch.targets, (Ids{11, 12, x, 21, x, /**/ 31, x, x, x, x}));
  EXPECT_EQ(batch.num_targets, 4);
  EXPECT_EQ(batch.num_examples, 3);
  EXPECT_THROW(make_batch({}, 0), InputError);
}

// Random examples packed by plan_packing: every property the trainer relies on.
TEST(Packing, RandomPlansKeepEveryInvariant) {
  std::mt19937_64 rng(1234);
  for (int trial = 0; trial < 50; ++trial) {
    const int64_t capacity = 4 + static_cast<int64_t>(rng() % 60);
    const size_t n = 1 + rng() % 40;
    std::vector<SftExample> examples(n);
    std::vector<int64_t> lengths(n);
    for (size_t i = 0; i < n; ++i) {
      lengths[i] = 1 + static_cast<int64_t>(rng() % capacity);
      for (int64_t k = 0; k < lengths[i]; ++k) {
        examples[i].ids.push_back(static_cast<TokenId>(i * 1000 + k));
        examples[i].loss_mask.push_back(k > 0 && rng() % 3 != 0 ? 1 : 0);
      }
    }
    const auto bins = plan_packing(lengths, capacity);
    std::vector<int> seen(n, 0);
    for (const Ids& bin : bins) {
      const PackedRow row = pack_examples(examples, bin);
      ASSERT_LE(static_cast<int64_t>(row.tokens.size()), capacity);
      for (int64_t index : bin)
        ++seen[index];
      size_t t = 0;
      for (size_t slot = 0; slot < bin.size(); ++slot) {
        const SftExample& ex = examples[bin[slot]];
        for (size_t i = 0; i < ex.ids.size(); ++i, ++t) {
          ASSERT_EQ(row.tokens[t], ex.ids[i]);
          ASSERT_EQ(row.positions[t], static_cast<int64_t>(i));
          ASSERT_EQ(row.segments[t], static_cast<int64_t>(slot));
          const bool target = i + 1 < ex.ids.size() && ex.loss_mask[i + 1] == 1;
          ASSERT_EQ(row.targets[t], target ? ex.ids[i + 1] : kIgnoreTarget);
          // A target is always the next token of the same segment.
          if (row.targets[t] != kIgnoreTarget) {
            ASSERT_EQ(row.segments[t + 1], row.segments[t]);
            ASSERT_EQ(row.targets[t], row.tokens[t + 1]);
          }
        }
      }
      ASSERT_EQ(t, row.tokens.size());
    }
    for (size_t i = 0; i < n; ++i)
      ASSERT_EQ(seen[i], 1) << "example " << i;
  }
}

}  // namespace
}  // namespace align
