// RMSNorm as a CUDA kernel, Torch-free: raw pointers, a params struct and a stream.
//   out[r, c] = cast_T(x[r, c] * rsqrt(mean_c(x[r, :]^2) + eps)) * weight[c]
// with the mean and the scaling in fp32, the product rounded to T as Hugging Face's Phi3RMSNorm
// does (normalise in fp32, cast to the input dtype, then multiply by the weight).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_support.h"

namespace align::kernels {

struct RmsNormParams {
  const void* x = nullptr;  // [rows, cols] T; rows x_row_stride elements apart, columns contiguous
  int64_t x_row_stride = 0;
  const void* weight = nullptr;  // [cols] T
  void* out = nullptr;           // [rows, cols] T; rows out_row_stride elements apart
  int64_t out_row_stride = 0;
  int64_t rows = 0;
  int64_t cols = 0;
  float eps = 1e-5f;
};

// Enqueues the kernel on `stream`; returns the launch status (cudaSuccess when enqueued).
cudaError_t launch_rms_norm(const RmsNormParams& params, DType dtype, cudaStream_t stream);

}  // namespace align::kernels
