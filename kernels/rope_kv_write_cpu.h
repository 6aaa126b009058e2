// The CPU twin of rope_kv_write (kernels/rope_kv_write_op.h gives the numerics), fp32 only: one
// pass per token that rotates q into its output and k and v straight into their cache slots,
// instead of the reference's chain (narrow, cat, two products and an add per tensor, then two
// index_copy_). Bit-identical to the reference: the same two products and one add per rotated
// value, in fp32, never contracted into a fused multiply-add (rope_kv_write_cpu.cc builds with
// -ffp-contract=off). Torch-free; the op layer splits tokens over threads.
#pragma once

#include <cstdint>

namespace align::kernels {

struct RopeKvWriteCpu {
  const float* qkv = nullptr;  // [N, H*D + 2*Hkv*D] rows qkv_stride apart
  int64_t qkv_stride = 0;
  const float* cos = nullptr;  // [N, R] contiguous
  const float* sin = nullptr;
  const int64_t* slots = nullptr;  // [N]; a negative slot writes nothing
  float* q_out = nullptr;          // [N, H, D]
  float* k_cache = nullptr;        // [num_slots, Hkv, D]
  float* v_cache = nullptr;
  int64_t heads = 0, kv_heads = 0, head_dim = 0, rotary_dim = 0;
};

// Tokens [begin, end).
void rope_kv_write_cpu(const RopeKvWriteCpu& p, int64_t begin, int64_t end);

}  // namespace align::kernels
