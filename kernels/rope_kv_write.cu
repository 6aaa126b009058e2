#include <cuda_bf16.h>

#include "kernels/device_dtype.cuh"
#include "kernels/rope_kv_write.h"

namespace align::kernels {
namespace {

constexpr int kLanes = 64;         // threads along the head dim (one rotary pair each)
constexpr int kHeadsPerBlock = 4;  // heads per block, one per threadIdx.y
constexpr int64_t kMaxGridY = 65535;

// round_T(round_T(a * c) + round_T(b * s)): the rounding of LibTorch's T-tensor `a * c + b * s`;
// the _rn intrinsics keep nvcc from contracting to an fma.
template <typename T>
__device__ inline T rotate(float a, float c, float b, float s) {
  const float ac = to_float(from_float<T>(__fmul_rn(a, c)));
  const float bs = to_float(from_float<T>(__fmul_rn(b, s)));
  return from_float<T>(__fadd_rn(ac, bs));
}

// grid (tokens, head groups); block (kLanes, kHeadsPerBlock). Head index hi runs over Q heads,
// then K heads, then V heads of the token's qkv row.
template <typename T>
__global__ void rope_kv_write_kernel(RopeKvWriteParams p) {
  const int64_t n = blockIdx.x;
  const int total_heads = p.heads + 2 * p.kv_heads;
  const int64_t slot = p.slots[n];
  const bool write_kv = slot >= 0 && slot < p.num_slots;
  const int D = p.head_dim, half = p.rotary_dim / 2;
  const T* row = static_cast<const T*>(p.qkv) + n * p.qkv_row_stride;
  const T* cos = static_cast<const T*>(p.cos) + n * p.cos_row_stride;
  const T* sin = static_cast<const T*>(p.sin) + n * p.sin_row_stride;
  for (int hi = blockIdx.y * kHeadsPerBlock + threadIdx.y; hi < total_heads;
       hi += gridDim.y * kHeadsPerBlock) {
    const T* src = row + static_cast<int64_t>(hi) * D;
    T* dst;
    if (hi < p.heads) {
      dst = static_cast<T*>(p.q_out) + (n * p.heads + hi) * D;
    } else if (!write_kv) {
      continue;
    } else if (hi < p.heads + p.kv_heads) {
      dst = static_cast<T*>(p.k_cache) + (slot * p.kv_heads + (hi - p.heads)) * D;
    } else {
      dst = static_cast<T*>(p.v_cache) + (slot * p.kv_heads + (hi - p.heads - p.kv_heads)) * D;
      for (int d = threadIdx.x; d < D; d += kLanes)
        dst[d] = src[d];
      continue;
    }
    for (int j = threadIdx.x; j < half; j += kLanes) {
      const float x1 = to_float(src[j]), x2 = to_float(src[j + half]);
      dst[j] = rotate<T>(x1, to_float(cos[j]), -x2, to_float(sin[j]));
      dst[j + half] = rotate<T>(x2, to_float(cos[j + half]), x1, to_float(sin[j + half]));
    }
    for (int d = p.rotary_dim + threadIdx.x; d < D; d += kLanes)
      dst[d] = src[d];
  }
}

}  // namespace

cudaError_t launch_rope_kv_write(const RopeKvWriteParams& params, DType dtype,
                                 cudaStream_t stream) {
  if (params.tokens == 0) return cudaSuccess;
  const int64_t total_heads = params.heads + 2 * static_cast<int64_t>(params.kv_heads);
  int64_t groups = (total_heads + kHeadsPerBlock - 1) / kHeadsPerBlock;
  if (groups > kMaxGridY) groups = kMaxGridY;
  const dim3 grid(static_cast<unsigned>(params.tokens), static_cast<unsigned>(groups));
  const dim3 block(kLanes, kHeadsPerBlock);
  if (dtype == DType::F32) {
    rope_kv_write_kernel<float><<<grid, block, 0, stream>>>(params);
  } else {
    rope_kv_write_kernel<__nv_bfloat16><<<grid, block, 0, stream>>>(params);
  }
  return cudaGetLastError();
}

}  // namespace align::kernels
