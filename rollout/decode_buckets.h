// Decode-step bucketing, the first half of CUDA-graph capture for the decode step (the capture
// itself is not done): a captured graph replays fixed shapes, so a decode batch of B rows is
// rounded up to the smallest bucket in {1, 2, 4, ..., 256} and filled with padding rows that
// touch nothing the real rows read:
//   slot -1      rope_kv_write writes nothing for a negative slot;
//   position 0   context length 1: the row attends to one key of page 0 (block table row of
//                zeros); its output is garbage and dropped;
//   valid false  the caller drops the row's logits and samples nothing for it.
// Batches over 256 rows are not bucketed (bucket == rows): they run uncaptured.
#pragma once

#include <cstdint>
#include <vector>

namespace align {

// The bucket sizes, ascending.
const std::vector<int64_t>& decode_bucket_sizes();

// The smallest bucket >= rows, or rows itself past the largest bucket. rows >= 1.
int64_t decode_bucket(int64_t rows);

struct PaddedDecodeRows {
  int64_t rows = 0;                   // B, the real rows (first in every vector)
  int64_t bucket = 0;                 // padded batch size >= B
  std::vector<int64_t> slots;         // [bucket] flat KV slot of each row's new token; padding -1
  std::vector<int64_t> positions;     // [bucket] position of each row's new token; padding 0
  std::vector<int64_t> context_lens;  // [bucket] positions + 1 (keys including the new token)
  std::vector<bool> valid;            // [bucket] true for the real rows
};

// slots, positions [B] of the real decode rows, B >= 1. Throws InputError on mismatched sizes,
// an empty batch, a negative slot or position.
PaddedDecodeRows pad_decode_rows(const std::vector<int64_t>& slots,
                                 const std::vector<int64_t>& positions);

}  // namespace align
