#include <cuda_bf16.h>

#include "kernels/device_dtype.cuh"
#include "kernels/residual_rms_norm.h"

namespace align::kernels {
namespace {

constexpr int kThreads = 256;

// Sum of `v` over the block (kThreads threads); every thread gets the total.
__device__ inline float block_sum(float v) {
  __shared__ float warp_sums[kThreads / 32];
  for (int offset = 16; offset > 0; offset /= 2)
    v += __shfl_xor_sync(0xffffffff, v, offset);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kThreads / 32 ? warp_sums[lane] : 0.f;
    for (int offset = 16; offset > 0; offset /= 2)
      v += __shfl_xor_sync(0xffffffff, v, offset);
    if (lane == 0) warp_sums[0] = v;
  }
  __syncthreads();
  return warp_sums[0];
}

// One block per row. Pass 1 writes h and sums its squares; pass 2 re-reads the h this thread wrote
// (so no barrier is needed for it) and writes the normalised, weighted row.
template <typename T>
__global__ void residual_rms_norm_kernel(ResidualRmsNormParams p) {
  const int64_t row = blockIdx.x;
  const T* x = static_cast<const T*>(p.x) + row * p.x_row_stride;
  const T* res = static_cast<const T*>(p.residual) + row * p.residual_row_stride;
  const T* w = static_cast<const T*>(p.weight);
  T* h = static_cast<T*>(p.h) + row * p.h_row_stride;
  T* out = static_cast<T*>(p.out) + row * p.out_row_stride;

  float sum = 0.f;
  for (int64_t c = threadIdx.x; c < p.cols; c += kThreads) {
    const T hc = from_float<T>(to_float(x[c]) + to_float(res[c]));
    h[c] = hc;
    const float v = to_float(hc);
    sum += v * v;
  }
  const float inv_rms = rsqrtf(block_sum(sum) / static_cast<float>(p.cols) + p.eps);
  for (int64_t c = threadIdx.x; c < p.cols; c += kThreads) {
    const T normed = from_float<T>(to_float(h[c]) * inv_rms);
    out[c] = from_float<T>(to_float(normed) * to_float(w[c]));
  }
}

}  // namespace

cudaError_t launch_residual_rms_norm(const ResidualRmsNormParams& params, DType dtype,
                                     cudaStream_t stream) {
  if (params.rows == 0 || params.cols == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(params.rows));
  if (dtype == DType::F32) {
    residual_rms_norm_kernel<float><<<grid, kThreads, 0, stream>>>(params);
  } else {
    residual_rms_norm_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(params);
  }
  return cudaGetLastError();
}

}  // namespace align::kernels
