#include <cuda_bf16.h>

#include "kernels/device_dtype.cuh"
#include "kernels/silu_gate.h"

namespace align::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxColumnBlocks = 65535;  // grid.y limit; threads loop beyond it

// grid (rows, column blocks). The division and the product are written as correctly rounded
// intrinsics so nvcc cannot contract or approximate them: the same fp32 operations LibTorch runs.
template <typename T>
__global__ void silu_gate_kernel(SiluGateParams p) {
  const int64_t row = blockIdx.x;
  const T* gate = static_cast<const T*>(p.gate_up) + row * p.in_row_stride;
  const T* up = gate + p.cols;
  T* out = static_cast<T*>(p.out) + row * p.out_row_stride;
  for (int64_t c = static_cast<int64_t>(blockIdx.y) * kThreads + threadIdx.x; c < p.cols;
       c += static_cast<int64_t>(gridDim.y) * kThreads) {
    const float g = to_float(gate[c]);
    const T silu = from_float<T>(__fdiv_rn(g, __fadd_rn(1.f, expf(-g))));
    out[c] = from_float<T>(__fmul_rn(to_float(up[c]), to_float(silu)));
  }
}

}  // namespace

cudaError_t launch_silu_gate(const SiluGateParams& params, DType dtype, cudaStream_t stream) {
  if (params.rows == 0 || params.cols == 0) return cudaSuccess;
  int64_t column_blocks = (params.cols + kThreads - 1) / kThreads;
  if (column_blocks > kMaxColumnBlocks) column_blocks = kMaxColumnBlocks;
  const dim3 grid(static_cast<unsigned>(params.rows), static_cast<unsigned>(column_blocks));
  if (dtype == DType::F32) {
    silu_gate_kernel<float><<<grid, kThreads, 0, stream>>>(params);
  } else {
    silu_gate_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(params);
  }
  return cudaGetLastError();
}

}  // namespace align::kernels
