// ggml's tensor encodings to and from fp32 Torch tensors, as ggml-quants.c's reference functions
// (and gguf-py's quants.py, which the tests match bit for bit) compute them. A row of a tensor is
// ne[0] values, cut into blocks along the row:
//
//   type  block  bytes  layout                                  value
//   F32   1      4      IEEE single                              x
//   F16   1      2      IEEE half (round to nearest even)        x
//   BF16  1      2      upper half of the f32 (nearest even)     x
//   Q8_0  32     34     f16 d | 32 x int8 q                      q * d
//   Q4_0  32     18     f16 d | 16 bytes: value j in the low     (q - 8) * d
//                       nibble of byte j, value j+16 in its high
//   Q4_1  32     20     f16 d | f16 m | 16 bytes as Q4_0          q * d + m
//
// Q8_0 is written as ggml's quantize_row_q8_0_ref: d = max|x| / 127 in fp32, q = roundf(x * (1/d))
// (half away from zero; q = 0 when d = 0), d stored as f16. Decoding computes in fp32 with one
// rounding per operation in the order of the table (no fused multiply-add), as numpy does.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/gguf_file.h"

namespace align {

// True for the types ggml_dequantize reads: F32, F16, BF16, Q8_0, Q4_0, Q4_1.
bool ggml_can_dequantize(GgmlType type);
// True for the types ggml_quantize writes: F32, F16, BF16, Q8_0.
bool ggml_can_quantize(GgmlType type);

// The values of `rows` rows of `cols` values of `type` stored at `data`: [rows, cols] fp32.
// Throws InputError naming `what` for a type ggml_can_dequantize refuses.
torch::Tensor ggml_dequantize(const uint8_t* data, GgmlType type, int64_t rows, int64_t cols,
                              const std::string& what);

// `values` ([rows, cols], any float dtype, cast to fp32 first) encoded as `type`; cols must be a
// whole number of blocks. Throws InputError for a type ggml_can_quantize refuses.
std::vector<uint8_t> ggml_quantize(const torch::Tensor& values, GgmlType type);

}  // namespace align
