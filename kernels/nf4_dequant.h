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
#include "kernels/nf4_dequant_params.h"

namespace align::kernels {

// Enqueues the kernel on `stream` (params.out_first must be 0); returns the launch status
// (cudaSuccess when enqueued).
cudaError_t launch_nf4_dequant(const Nf4DequantParams& params, DType dtype, cudaStream_t stream);

}  // namespace align::kernels
