#include <cuda_bf16.h>

#include "kernels/device_dtype.cuh"
#include "kernels/nf4_dequant.h"

namespace align::kernels {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65535 * 8;  // threads loop beyond it

__device__ inline float block_absmax(const Nf4DequantParams& p, int64_t b) {
  if (p.absmax_f32) return p.absmax_f32[b];
  return __fadd_rn(__fmul_rn(p.code2[p.absmax_u8[b]], p.absmax2[b / 256]), p.offset);
}

// One thread per packed byte (two elements, both in one block since blocksize is even).
template <typename T>
__global__ void nf4_dequant_kernel(Nf4DequantParams p) {
  __shared__ float levels[16];
  if (threadIdx.x < 16) levels[threadIdx.x] = p.levels[threadIdx.x];
  __syncthreads();
  T* out = static_cast<T*>(p.out);
  const int64_t bytes = (p.n + 1) / 2;
  for (int64_t j = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x; j < bytes;
       j += static_cast<int64_t>(gridDim.x) * kThreads) {
    const int64_t i = 2 * j;
    const float scale = block_absmax(p, i / p.blocksize);
    const uint8_t byte = p.packed[j];
    out[i] = from_float<T>(__fmul_rn(levels[byte >> 4], scale));
    if (i + 1 < p.n) out[i + 1] = from_float<T>(__fmul_rn(levels[byte & 0xF], scale));
  }
}

}  // namespace

cudaError_t launch_nf4_dequant(const Nf4DequantParams& params, DType dtype, cudaStream_t stream) {
  if (params.out_first != 0) return cudaErrorInvalidValue;  // whole weights only
  if (params.n == 0) return cudaSuccess;
  const int64_t bytes = (params.n + 1) / 2;
  int64_t blocks = (bytes + kThreads - 1) / kThreads;
  if (blocks > kMaxBlocks) blocks = kMaxBlocks;
  if (dtype == DType::F32) {
    nf4_dequant_kernel<float><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(params);
  } else {
    nf4_dequant_kernel<__nv_bfloat16>
        <<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(params);
  }
  return cudaGetLastError();
}

}  // namespace align::kernels
