// The fused CUDA kernels of paged_forward (rollout/paged_forward.h), one predicate per op: each
// says when its kernel may replace the reference op, and paged_forward asks it once per call.
// Every predicate requires a CUDA model in fp32 or bf16, a build with the kernels (nvcc found at
// configure time) and no LoRA attached (LoRA models keep the reference path); on anything else
// (CPU, other dtypes, builds without nvcc) paged_forward runs exactly its reference ops.
//
// What each kernel covers (model/kernels/*_op.h):
//   rope_kv_write      RoPE on q and k (partial rotary: R <= D, R even; the cos/sin come from
//                      Rope::cos_sin, so each row's longrope factors are already applied) and the
//                      K/V write at the slots;
//   residual_rms_norm  the attention residual add with the post-attention RMSNorm;
//   silu_gate          the SwiGLU gate up * silu(gate);
//   paged_decode_attention  attention of rows with one new token (sliding window supported;
//                      head dims without a compiled kernel take the op's own reference); rows
//                      with more tokens (prefill chunks) keep paged_attention_reference. This one
//                      also serves fp32 CPU models (LoRA or not): the op's CPU kernel
//                      reads the pages in place. On the CPU, rows forked from one prefix
//                      (samples of one prompt: the same leading page ids) take the shared-prefix
//                      form, which reads those pages once for all of them. Not yet on CUDA: the
//                      op's checks of that form copy its lengths to the host on every call (a
//                      device sync per layer), and whether it pays there is unmeasured.
// None of this has run on a GPU yet: tests/rollout/paged_forward_gpu_test.cc compares it with the
// CPU reference when one is present.
#pragma once

#include <torch/types.h>

#include <optional>

#include <vector>

#include "kernels/paged_attention_op.h"
#include "model/phi3_model.h"
#include "rollout/paged_forward.h"
#include "rollout/paged_kv_cache.h"

namespace align {

// Which fused kernels one paged_forward call uses.
struct FusedPagedOps {
  bool rope_kv_write = false;
  bool residual_rms_norm = false;
  bool silu_gate = false;
  bool decode_attention = false;
};

FusedPagedOps fused_paged_ops(const Phi3Model& model);

// The decode rows (count == 1) of one call, as paged_decode_attention reads them. Built after the
// rows' tokens were appended to the cache, from the host's lengths (no device synchronisation).
struct PagedDecodeBatch {
  torch::Tensor offsets;        // [B] int64, each row's query in the packed [N, H, D] batch
  torch::Tensor block_tables;   // [B, max_pages] int32
  torch::Tensor context_lens;   // [B] int32, including the new token
  int64_t max_context_len = 0;  // max of context_lens, 0 when B == 0
  // Defined (CPU caches only) when at least two rows share their first full pages (the same page
  // ids): rows grouped by those pages, each group's common full pages as its prefix, the rest as
  // each row's suffix.
  std::optional<SharedPrefixBatch> shared;
};

PagedDecodeBatch paged_decode_batch(const PagedKvCache& cache, const std::vector<PagedRow>& rows,
                                    const std::vector<PagedAttentionRow>& attn_rows);

// paged_attention_reference's contract (q [N, H, D] -> [N, H, D]), with the decode rows computed by
// the paged_decode_attention op over `decode` and the other rows by the reference.
torch::Tensor paged_attention_fused(const torch::Tensor& q, const torch::Tensor& k_cache,
                                    const torch::Tensor& v_cache,
                                    const std::vector<PagedAttentionRow>& rows,
                                    const PagedDecodeBatch& decode, double scale,
                                    int64_t sliding_window);

}  // namespace align
