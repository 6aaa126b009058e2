#include "rollout/paged_forward_fused.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "kernels/kernel_support.h"
#include "kernels/paged_attention_op.h"

namespace align {
namespace {

// What every fused kernel needs: the kernels' own predicate on the model's weights (a CUDA model
// in a kernel dtype, a build with the kernels; sampling wants no gradient) and no LoRA.
bool fused_base(const Phi3Model& model) {
  const torch::Tensor weight = model.weights().embed.detach();
  return use_kernel({&weight}) && !model.has_lora();
}

}  // namespace

FusedPagedOps fused_paged_ops(const Phi3Model& model) {
  const ModelConfig& c = model.config();
  const bool base = fused_base(model);
  FusedPagedOps ops;
  ops.rope_kv_write =
      base && c.rotary_dim > 0 && c.rotary_dim % 2 == 0 && c.rotary_dim <= c.head_dim;
  ops.residual_rms_norm = base;
  ops.silu_gate = base;
  ops.decode_attention = base;
  return ops;
}

PagedDecodeBatch paged_decode_batch(const PagedKvCache& cache, const std::vector<PagedRow>& rows,
                                    const std::vector<PagedAttentionRow>& attn_rows) {
  std::vector<int64_t> seqs, offsets;
  PagedDecodeBatch batch;
  for (size_t r = 0; r < rows.size(); ++r) {
    if (attn_rows[r].count != 1) continue;
    seqs.push_back(rows[r].seq);
    offsets.push_back(attn_rows[r].offset);
    batch.max_context_len = std::max(batch.max_context_len, cache.length(rows[r].seq));
  }
  if (seqs.empty()) return batch;
  const auto device = cache.k.front().device();
  batch.offsets = at::tensor(offsets, at::kLong).to(device);
  batch.block_tables = cache.block_tables(seqs);
  batch.context_lens = cache.lengths(seqs);
  return batch;
}

torch::Tensor paged_attention_fused(const torch::Tensor& q, const torch::Tensor& k_cache,
                                    const torch::Tensor& v_cache,
                                    const std::vector<PagedAttentionRow>& rows,
                                    const PagedDecodeBatch& decode, double scale,
                                    int64_t sliding_window) {
  std::vector<PagedAttentionRow> prefill;
  for (const auto& row : rows) {
    if (row.count != 1) prefill.push_back(row);
  }
  // [N, H, D]; the reference fills the prefill rows (none: just the allocation).
  auto out = paged_attention_reference(q, k_cache, v_cache, prefill, scale, sliding_window);
  if (decode.max_context_len > 0) {
    auto decoded = paged_decode_attention(q.index_select(0, decode.offsets), k_cache, v_cache,
                                          decode.block_tables, decode.context_lens,
                                          decode.max_context_len, scale, sliding_window);
    out.index_copy_(0, decode.offsets, decoded);
  }
  return out;
}

}  // namespace align
