// Device-side conversions between the kernels' storage dtypes and fp32, shared by every kernel:
// loads widen exactly, stores round to nearest even (what LibTorch's casts do).
#pragma once

#include <cuda_bf16.h>

namespace align::kernels {

__device__ inline float to_float(float v) {
  return v;
}
__device__ inline float to_float(__nv_bfloat16 v) {
  return __bfloat162float(v);
}

template <typename T>
__device__ inline T from_float(float v);
template <>
__device__ inline float from_float<float>(float v) {
  return v;
}
template <>
__device__ inline __nv_bfloat16 from_float<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

}  // namespace align::kernels
