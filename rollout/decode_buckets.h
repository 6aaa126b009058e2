// Decode-step buckets: a captured CUDA graph replays fixed shapes, so a decode step of B rows
// runs on the persistent buffers of the smallest bucket in {1, 2, 4, ..., 256} that holds it,
// filled with padding rows (rollout/decode_graphs.h says what they touch). Steps of more rows run
// eagerly.
#pragma once

#include <cstdint>
#include <vector>

namespace align {

// The bucket sizes, ascending.
const std::vector<int64_t>& decode_bucket_sizes();

// The smallest bucket >= rows, or rows itself past the largest bucket. rows >= 1.
int64_t decode_bucket(int64_t rows);

}  // namespace align
