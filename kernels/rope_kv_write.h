// RoPE on q and k fused with writing k and v into the paged KV cache, as a CUDA kernel, Torch-free:
// raw pointers, a params struct and a stream. For each new token n, q head h < H, kv head g < Hkv:
//   q_out[n, h]          = rope(q[n, h])
//   k_cache[slots[n], g] = rope(k[n, g])     (slot = page * page_size + offset)
//   v_cache[slots[n], g] = v[n, g]
// where qkv[n] = Q (H*D) | K (Hkv*D) | V (Hkv*D) is the fused projection output and, as in
// model/rope.h (NeoX style, first R dims rotate, the rest pass through):
//   rope(x)[d] = x[d] * cos[n, d] - x[d + R/2] * sin[n, d]   d < R/2
//   rope(x)[d] = x[d] * cos[n, d] + x[d - R/2] * sin[n, d]   R/2 <= d < R
//   rope(x)[d] = x[d]                                        d >= R
// Both products and the sum are rounded to T one by one, as LibTorch's `x * cos + rot * sin` on T
// tensors rounds them, so the kernel is meant to match the reference bit for bit. The cache of one
// layer is [num_pages, page_size, Hkv, D] contiguous, seen here as [num_slots, Hkv, D]. A negative
// slot (padding) writes nothing; a slot >= num_slots is skipped too (the reference rejects it; the
// kernel never writes out of bounds).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_support.h"  // kernels::DType

namespace align::kernels {

struct RopeKvWriteParams {
  const void* qkv = nullptr;  // [tokens, (H + 2 Hkv) D] T; rows qkv_row_stride elements apart
  int64_t qkv_row_stride = 0;
  const void* cos = nullptr;  // [tokens, R] T; rows cos_row_stride elements apart
  int64_t cos_row_stride = 0;
  const void* sin = nullptr;  // [tokens, R] T; rows sin_row_stride elements apart
  int64_t sin_row_stride = 0;
  const int64_t* slots = nullptr;  // [tokens]
  void* q_out = nullptr;           // [tokens, H, D] T contiguous
  void* k_cache = nullptr;         // [num_slots, Hkv, D] T contiguous (pages flattened)
  void* v_cache = nullptr;         // [num_slots, Hkv, D] T contiguous
  int64_t num_slots = 0;           // num_pages * page_size
  int64_t tokens = 0;              // N
  int heads = 0;                   // H
  int kv_heads = 0;                // Hkv
  int head_dim = 0;                // D
  int rotary_dim = 0;              // R, even, <= D
};

// Enqueues the kernel on `stream`; returns the launch status (cudaSuccess when enqueued).
cudaError_t launch_rope_kv_write(const RopeKvWriteParams& params, DType dtype, cudaStream_t stream);

}  // namespace align::kernels
