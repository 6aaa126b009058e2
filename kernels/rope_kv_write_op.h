// The thin Torch layer over the RoPE + paged KV write kernel (kernels/rope_kv_write.h):
// checks the tensors, picks the dtype, launches on the current stream; a CPU twin
// (kernels/rope_kv_write_cpu.h) serves fp32 CPU calls without gradients, a plain LibTorch
// reference everything else (bf16 CPU tensors, builds without nvcc, calls that need a gradient).
//
// Paged KV cache layout (shared with model/kernels/paged_attention* and the rollout engine), per
// layer: k_cache, v_cache [num_pages, page_size, Hkv, D] in the model dtype, contiguous. New token
// n goes to the flat slot slots[n] = page * page_size + offset; a negative slot (padding) writes
// nothing. Slots of one call must be distinct.
#pragma once

#include <torch/types.h>

namespace align {

// The rotation of Hugging Face's Phi3 attention (apply_rotary_pos_emb), the only one: the model's
// attention and this op's reference use it (the kernel is tested against it). The first
// R = cos.size(-1) dims of each head become x * cos + rotate_half(x) * sin with
// rotate_half(y) = cat(-y[R/2:], y[:R/2]) (dim d pairs with d + R/2, NeoX style); dims [R, D) pass
// through (partial rotary). x [..., heads, D]; cos, sin [..., R] in x's dtype (model/rope.h makes
// them). Returns a new tensor [..., heads, D].
torch::Tensor apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                         const torch::Tensor& sin);

// The fused projection output split into heads, q and k rotated: qkv [..., H*D + 2*Hkv*D]
// (columns Q | K | V, H read from the width), cos, sin [..., R] ->
// {q [..., H, D], k [..., Hkv, D]} new tensors and v [..., Hkv, D], a view of qkv.
struct RotatedQkv {
  torch::Tensor q, k, v;
};
RotatedQkv rope_qkv(const torch::Tensor& qkv, const torch::Tensor& cos, const torch::Tensor& sin,
                    int64_t kv_heads, int64_t head_dim);

// qkv [N, H*D + 2*Hkv*D] (the fused projection output, columns Q | K | V; rows may be strided);
// cos, sin [N, R] (or any shape of N*R elements, e.g. Rope::cos_sin's [B, T, R] with B*T = N) in
// qkv's dtype; slots [N] int64; k_cache, v_cache [num_pages, page_size, Hkv, D] (Hkv and D are
// read from the cache, H from qkv). Rotates q and k with model/rope.h's numerics (NeoX
// rotate_half on the first R dims, dims >= R pass through), writes rotated k and v into the
// caches at the slots (in place: the caches are handles to the storage), returns rotated q
// [N, H, D]. Runs the fused kernel for CUDA fp32/bf16 when no gradient is wanted, the reference
// otherwise; the CPU twin for fp32 CPU calls that want no gradient (use_cpu_kernel). Throws
// align::Error on inconsistent shapes, dtypes or devices.
torch::Tensor rope_kv_write(const torch::Tensor& qkv, const torch::Tensor& cos,
                            const torch::Tensor& sin, const torch::Tensor& slots,
                            const torch::Tensor& k_cache, const torch::Tensor& v_cache);

// Plain LibTorch, any device and dtype: rope_qkv, then k and v copied to the non-negative slots.
// Also rejects slots >= num_pages * page_size.
torch::Tensor rope_kv_write_reference(const torch::Tensor& qkv, const torch::Tensor& cos,
                                      const torch::Tensor& sin, const torch::Tensor& slots,
                                      const torch::Tensor& k_cache, const torch::Tensor& v_cache);

// The CPU twin (kernels/rope_kv_write_cpu.h), bit-identical to the reference: all tensors fp32 on
// the CPU, caches contiguous; slots are checked against the cache as the reference checks them.
torch::Tensor rope_kv_write_cpu(const torch::Tensor& qkv, const torch::Tensor& cos,
                                const torch::Tensor& sin, const torch::Tensor& slots,
                                const torch::Tensor& k_cache, const torch::Tensor& v_cache);

// The kernel: all tensors on one CUDA device, fp32 or bf16 (slots int64), caches contiguous.
// Slots >= num_pages * page_size are not checked here (that would synchronise the stream); the
// kernel skips them rather than write out of bounds. Throws align::Error when built without nvcc.
torch::Tensor rope_kv_write_cuda(const torch::Tensor& qkv, const torch::Tensor& cos,
                                 const torch::Tensor& sin, const torch::Tensor& slots,
                                 const torch::Tensor& k_cache, const torch::Tensor& v_cache);

}  // namespace align
