// NF4 dequantisation (bitsandbytes' 4-bit NormalFloat, QLoRA: Dettmers et al. 2023, arXiv
// 2305.14314) as a CUDA kernel, Torch-free: raw pointers, a params struct and a stream.
//
// Element i of the flat weight (n elements, row-major [out, in]) is code k of byte i / 2 (the high
// nibble for even i, the low one for odd i, as bitsandbytes packs them), in block b = i /
// blocksize:
//   absmax[b] = absmax_f32[b]                                       (plain)
//             = code2[absmax_u8[b]] * absmax2[b / 256] + offset     (double quantisation)
//   out[i]    = cast_T(levels[k] * absmax[b])
// every product and sum a correctly rounded fp32 operation in that order (no FMA contraction):
// the fp32 values bitsandbytes' dequantize_blockwise + dequantize_4bit compute, rounded to T once.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_support.h"  // kernels::DType

namespace align::kernels {

struct Nf4DequantParams {
  const uint8_t* packed = nullptr;     // [(n + 1) / 2] two codes per byte, first in the high nibble
  const float* absmax_f32 = nullptr;   // [blocks] fp32 (plain), or nullptr with double quantisation
  const uint8_t* absmax_u8 = nullptr;  // [blocks] 8-bit codes of absmax - offset (double quant)
  const float* absmax2 = nullptr;      // [ceil(blocks / 256)] fp32 scale of each 256 absmax codes
  const float* code2 = nullptr;        // [256] fp32 the 8-bit dynamic map
  float offset = 0;                    // mean of the fp32 absmax (double quantisation)
  const float* levels = nullptr;       // [16] fp32 the NF4 levels
  void* out = nullptr;                 // [n] T
  int64_t n = 0;
  int64_t blocksize = 64;  // elements per absmax, even
};

// Enqueues the kernel on `stream`; returns the launch status (cudaSuccess when enqueued).
cudaError_t launch_nf4_dequant(const Nf4DequantParams& params, DType dtype, cudaStream_t stream);

}  // namespace align::kernels
