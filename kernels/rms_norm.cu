#include <cuda_bf16.h>

#include "kernels/device_dtype.cuh"
#include "kernels/rms_norm.h"

namespace align::kernels {
namespace {

constexpr int kThreads = 256;

// One block per row: a block-wide fp32 sum of squares, then the scaled, weighted row.
template <typename T>
__global__ void rms_norm_kernel(RmsNormParams p) {
  const int64_t row = blockIdx.x;
  const T* x = static_cast<const T*>(p.x) + row * p.x_row_stride;
  const T* w = static_cast<const T*>(p.weight);
  T* out = static_cast<T*>(p.out) + row * p.out_row_stride;

  float sum = 0.f;
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
    const float v = to_float(x[c]);
    sum += v * v;
  }
  for (int offset = 16; offset > 0; offset /= 2)
    sum += __shfl_xor_sync(0xffffffff, sum, offset);
  __shared__ float warp_sums[kThreads / 32];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) warp_sums[warp] = sum;
  __syncthreads();
  if (warp == 0) {
    sum = lane < blockDim.x / 32 ? warp_sums[lane] : 0.f;
    for (int offset = 16; offset > 0; offset /= 2)
      sum += __shfl_xor_sync(0xffffffff, sum, offset);
    if (lane == 0) warp_sums[0] = sum;
  }
  __syncthreads();
  const float inv_rms = rsqrtf(warp_sums[0] / static_cast<float>(p.cols) + p.eps);
  for (int64_t c = threadIdx.x; c < p.cols; c += blockDim.x) {
    const T normed = from_float<T>(to_float(x[c]) * inv_rms);
    out[c] = from_float<T>(to_float(normed) * to_float(w[c]));
  }
}

}  // namespace

cudaError_t launch_rms_norm(const RmsNormParams& params, DType dtype, cudaStream_t stream) {
  if (params.rows == 0 || params.cols == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(params.rows));
  if (dtype == DType::F32) {
    rms_norm_kernel<float><<<grid, kThreads, 0, stream>>>(params);
  } else {
    rms_norm_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(params);
  }
  return cudaGetLastError();
}

}  // namespace align::kernels
