// Laying SFT examples out as rows for a causal LM forward with next-token targets.
//
// Several examples share a row ("packing"): positions restart at 0 for each example and each gets
// its own segment id, so attention is blocked across examples (the model's forward takes
// segments [B, T]: a token attends only to earlier tokens with the same segment id). Targets are
// Hugging Face's shifted labels and never cross an example boundary:
//
//   example a: ids a0 a1 a2, loss_mask 0 1 1      example b: ids b0 b1, loss_mask 0 1
//   tokens     a0   a1   a2   b0   b1
//   positions  0    1    2    0    1
//   segments   0    0    0    1    1
//   targets    a1   a2   -100 b1   -100
//
// Plain std::vector outputs; the trainer turns them into tensors.
#pragma once

#include <cstdint>
#include <vector>

#include "data/sft_dataset.h"

namespace align {

constexpr int64_t kIgnoreTarget = -100;

struct PackedRow {
  std::vector<int64_t> tokens;     // [T]
  std::vector<int64_t> positions;  // [T] 0.. per example
  std::vector<int64_t> segments;   // [T] example slot within the row (0, 1, ...)
  std::vector<int64_t> targets;    // [T] targets[t] = tokens[t+1] if t+1 is in the same example
                                   //     and its loss_mask is 1, else kIgnoreTarget
  int64_t num_examples = 0;
};

// B rows padded to a common T. Padding: token pad_id, target kIgnoreTarget, positions 0.., and a
// segment id of its own (one more than the row's last example), so it never attends to examples.
struct Batch {
  int64_t rows = 0, seq_len = 0;                              // B, T
  std::vector<int64_t> tokens, positions, segments, targets;  // row-major [B, T]
  int64_t num_targets = 0;                                    // targets != kIgnoreTarget
  int64_t num_examples = 0;
  int64_t num_tokens = 0;  // real tokens (rows * seq_len less padding)
};

// Appends `example` to `row` as the next segment (id row.num_examples).
void append_example(PackedRow& row, const SftExample& example);

// examples[indices[0]], examples[indices[1]], ... laid out in one row, in that order.
PackedRow pack_examples(const std::vector<SftExample>& examples,
                        const std::vector<int64_t>& indices);

// Groups example indices into bins whose lengths sum to at most `capacity`: best-fit decreasing
// (TRL's "bfd"; longest first, each into the fullest bin it fits, ties by lower index). Indices
// within a bin are ascending; bins are in creation order. Every index appears exactly once.
// Throws InputError for a length < 1 or > capacity.
std::vector<std::vector<int64_t>> plan_packing(const std::vector<int64_t>& lengths,
                                               int64_t capacity);

// Rows padded with pad_id to the longest one. Throws InputError when `rows` is empty.
Batch make_batch(const std::vector<PackedRow>& rows, int64_t pad_id);

}  // namespace align
