// Residual add fused with RMSNorm as a CUDA kernel, Torch-free: raw pointers, a params struct and
// a stream. Per row r, column c:
//   h[r, c]   = cast_T(x[r, c] + residual[r, c])                      (the Phi3 layer's h +
//   attn_out) out[r, c] = cast_T(cast_T(h[r, c] * rsqrt(mean_c(h[r, :]^2) + eps)) * weight[c])
// The add is computed in fp32 and rounded once to T (as a T + T add in LibTorch); the norm reads
// the rounded h and follows Hugging Face's Phi3RMSNorm (normalise in fp32, cast to T, multiply by
// the weight), exactly as kernels/rms_norm.cu does.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_support.h"  // kernels::DType

namespace align::kernels {

struct ResidualRmsNormParams {
  const void* x = nullptr;  // [rows, cols] T; rows x_row_stride elements apart, columns contiguous
  int64_t x_row_stride = 0;
  const void* residual = nullptr;  // [rows, cols] T; rows residual_row_stride elements apart
  int64_t residual_row_stride = 0;
  const void* weight = nullptr;  // [cols] T
  void* h = nullptr;             // [rows, cols] T out; rows h_row_stride elements apart
  int64_t h_row_stride = 0;
  void* out = nullptr;  // [rows, cols] T out; rows out_row_stride elements apart
  int64_t out_row_stride = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  float eps = 1e-5f;
};

// Enqueues the kernel on `stream`; returns the launch status (cudaSuccess when enqueued).
// h may alias x or residual (same strides): each element is read before it is written, by the
// same thread.
cudaError_t launch_residual_rms_norm(const ResidualRmsNormParams& params, DType dtype,
                                     cudaStream_t stream);

}  // namespace align::kernels
