#include "model/ggml_quant.h"

#include <c10/util/Half.h>

#include <cmath>
#include <cstring>

#include "common/error.h"

namespace align {
namespace {

constexpr int64_t kBlock = 32;  // QK8_0, QK4_0, QK4_1

// A read-only [n_blocks, block_bytes] uint8 view of the mapping (the ops below never write it).
torch::Tensor blocks_of(const uint8_t* data, int64_t n_blocks, int64_t block_bytes) {
  return torch::from_blob(const_cast<uint8_t*>(data), {n_blocks, block_bytes}, torch::kUInt8);
}

// Bytes [begin, begin + 2) of every block, read as an f16 and widened: [n_blocks, 1] fp32.
torch::Tensor half_column(const torch::Tensor& blocks, int64_t begin) {
  return blocks.slice(1, begin, begin + 2).contiguous().view(torch::kHalf).to(torch::kFloat);
}

// The 32 nibbles of each block's 16 bytes from `begin`, in value order: [n_blocks, 32] fp32.
torch::Tensor nibbles(const torch::Tensor& blocks, int64_t begin) {
  const torch::Tensor bytes = blocks.slice(1, begin, begin + kBlock / 2);
  return torch::cat({bytes.bitwise_and(0x0F), bytes.bitwise_right_shift(4)}, 1).to(torch::kFloat);
}

// C's roundf: halves away from zero (numpy's np_roundf in gguf-py computes the same).
float round_half_away(float x) {
  const float a = std::fabs(x);
  const float floored = std::floor(a);
  const float b = floored + std::floor(2.0f * (a - floored));
  return std::copysign(b, x);
}

void quantize_q8_0(const float* x, int64_t n, uint8_t* out) {
  for (int64_t b = 0; b < n / kBlock; ++b, x += kBlock, out += 2 + kBlock) {
    float amax = 0.0f;
    for (int64_t j = 0; j < kBlock; ++j)
      amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t half = c10::Half(d).x;
    std::memcpy(out, &half, 2);
    for (int64_t j = 0; j < kBlock; ++j)
      out[2 + j] = static_cast<uint8_t>(static_cast<int8_t>(round_half_away(x[j] * id)));
  }
}

}  // namespace

bool ggml_can_dequantize(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16 ||
         type == GgmlType::kQ8_0 || type == GgmlType::kQ4_0 || type == GgmlType::kQ4_1;
}

bool ggml_can_quantize(GgmlType type) {
  return type == GgmlType::kF32 || type == GgmlType::kF16 || type == GgmlType::kBF16 ||
         type == GgmlType::kQ8_0;
}

torch::Tensor ggml_dequantize(const uint8_t* data, GgmlType type, int64_t rows, int64_t cols,
                              const std::string& what) {
  if (!ggml_can_dequantize(type)) {
    throw InputError(what + ": type " + ggml_type_name(type) +
                     " cannot be read (align dequantises F32, F16, BF16, Q8_0, Q4_0 and Q4_1)");
  }
  const int64_t n = rows * cols;
  auto flat = [&](torch::ScalarType dtype) {
    return torch::from_blob(const_cast<uint8_t*>(data), {n}, dtype).to(torch::kFloat);
  };
  torch::Tensor out;
  if (type == GgmlType::kF32) {
    out = torch::from_blob(const_cast<uint8_t*>(data), {n}, torch::kFloat).clone();
  } else if (type == GgmlType::kF16) {
    out = flat(torch::kHalf);
  } else if (type == GgmlType::kBF16) {
    out = flat(torch::kBFloat16);
  } else if (type == GgmlType::kQ8_0) {
    const torch::Tensor blocks = blocks_of(data, n / kBlock, 2 + kBlock);
    const torch::Tensor q = blocks.slice(1, 2, 2 + kBlock).contiguous().view(torch::kInt8);
    out = q.to(torch::kFloat).mul(half_column(blocks, 0));
  } else if (type == GgmlType::kQ4_0) {
    const torch::Tensor blocks = blocks_of(data, n / kBlock, 2 + kBlock / 2);
    out = nibbles(blocks, 2).sub(8.0).mul(half_column(blocks, 0));
  } else {  // Q4_1
    const torch::Tensor blocks = blocks_of(data, n / kBlock, 4 + kBlock / 2);
    out = nibbles(blocks, 4).mul(half_column(blocks, 0)).add(half_column(blocks, 2));
  }
  return out.reshape({rows, cols});
}

std::vector<uint8_t> ggml_quantize(const torch::Tensor& values, GgmlType type) {
  if (!ggml_can_quantize(type)) {
    throw InputError("cannot write ggml type " + ggml_type_name(type) +
                     " (align writes F32, F16, BF16 and Q8_0)");
  }
  const int64_t n = values.numel();
  std::vector<uint8_t> out(ggml_nbytes(type, {values.size(-1), n / values.size(-1)}, "tensor"));
  if (type == GgmlType::kQ8_0) {
    const torch::Tensor x = values.to(torch::kFloat).contiguous();
    quantize_q8_0(x.data_ptr<float>(), n, out.data());
    return out;
  }
  const torch::ScalarType dtype = type == GgmlType::kF32   ? torch::kFloat
                                  : type == GgmlType::kF16 ? torch::kHalf
                                                           : torch::kBFloat16;
  // Torch rounds fp32 to half and bfloat16 to nearest even, as ggml does.
  const torch::Tensor x = values.to(torch::kFloat).to(dtype).contiguous();
  std::memcpy(out.data(), x.data_ptr(), out.size());
  return out;
}

}  // namespace align
