// The SwiGLU gate of the Phi3 MLP as a CUDA kernel, Torch-free: raw pointers, a params struct and
// a stream. Per row r, column c < I (gate is the first half of gate_up, up the second):
//   out[r, c] = cast_T(up[r, c] * cast_T(silu(gate[r, c]))),  silu(g) = g / (1 + exp(-g))
// in fp32, rounded to T exactly where LibTorch's `up * silu(gate)` rounds (Hugging Face's
// `up_states * activation_fn(gate)`): once after silu, once after the product.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_support.h"  // kernels::DType

namespace align::kernels {

struct SiluGateParams {
  const void* gate_up = nullptr;  // [rows, 2 * cols] T; rows in_row_stride elements apart,
  int64_t in_row_stride = 0;      // columns contiguous: gate = [:, :cols], up = [:, cols:]
  void* out = nullptr;            // [rows, cols] T; rows out_row_stride elements apart
  int64_t out_row_stride = 0;
  int64_t rows = 0;
  int64_t cols = 0;  // I
};

// Enqueues the kernel on `stream`; returns the launch status (cudaSuccess when enqueued).
cudaError_t launch_silu_gate(const SiluGateParams& params, DType dtype, cudaStream_t stream);

}  // namespace align::kernels
