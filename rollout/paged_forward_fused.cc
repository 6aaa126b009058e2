#include "rollout/paged_forward_fused.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>

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
  const auto dtype = model.dtype();
  // On the CPU for fp32 only: in bf16 the reference rounds scores and probabilities to bf16 as
  // transformers does, and greedy decoding follows it token for token; the kernel keeps fp32.
  ops.decode_attention = base || (model.device().is_cpu() && dtype == at::kFloat);
  return ops;
}

namespace {

// Rows grouped by their leading page ids (see PagedDecodeBatch::shared), or nothing when no two
// rows share a full page.
std::optional<SharedPrefixBatch> shared_prefix_batch(const PagedKvCache& cache,
                                                     const std::vector<int64_t>& seqs) {
  if (!cache.k.front().device().is_cpu()) return std::nullopt;  // see paged_forward_fused.h
  const int64_t ps = cache.page_size(), B = static_cast<int64_t>(seqs.size());
  std::map<int64_t, int64_t> group_of_page;      // first page id -> group
  std::vector<int64_t> group_of_row(B), shared;  // shared: common full pages per group
  std::vector<int64_t> leader;                   // a row of each group
  for (int64_t b = 0; b < B; ++b) {
    const auto& pages = cache.page_table(seqs[b]);
    const int64_t full = cache.length(seqs[b]) / ps;
    const auto [it, added] =
        group_of_page.emplace(pages.front(), static_cast<int64_t>(leader.size()));
    group_of_row[b] = it->second;
    if (added) {
      leader.push_back(b);
      shared.push_back(full);
      continue;
    }
    const auto& lead = cache.page_table(seqs[leader[it->second]]);
    int64_t n = 0;
    const int64_t limit = std::min(shared[it->second], full);
    while (n < limit && pages[n] == lead[n])
      ++n;
    shared[it->second] = n;
  }
  const int64_t G = static_cast<int64_t>(leader.size());
  bool pays = false;
  std::vector<int64_t> rows_of(G, 0);
  for (int64_t b = 0; b < B; ++b)
    ++rows_of[group_of_row[b]];
  for (int64_t g = 0; g < G; ++g)
    pays = pays || (rows_of[g] > 1 && shared[g] > 0);
  if (!pays) return std::nullopt;

  int64_t max_prefix = 1, max_suffix = 1;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = static_cast<int64_t>(cache.page_table(seqs[b]).size());
    max_suffix = std::max(max_suffix, n - shared[group_of_row[b]]);
  }
  for (int64_t g = 0; g < G; ++g)
    max_prefix = std::max(max_prefix, shared[g]);
  auto ints = at::TensorOptions().dtype(at::kInt);
  auto prefix_pages = at::zeros({G, max_prefix}, ints), prefix_lens = at::empty({G}, ints);
  auto suffix_pages = at::zeros({B, max_suffix}, ints), suffix_lens = at::empty({B}, ints);
  auto rows = at::empty({B}, ints);
  auto* pp = prefix_pages.data_ptr<int32_t>();
  auto* sp = suffix_pages.data_ptr<int32_t>();
  for (int64_t g = 0; g < G; ++g) {
    const auto& pages = cache.page_table(seqs[leader[g]]);
    for (int64_t i = 0; i < shared[g]; ++i)
      pp[g * max_prefix + i] = static_cast<int32_t>(pages[i]);
    prefix_lens.data_ptr<int32_t>()[g] = static_cast<int32_t>(shared[g] * ps);
  }
  for (int64_t b = 0; b < B; ++b) {
    const int64_t g = group_of_row[b];
    const auto& pages = cache.page_table(seqs[b]);
    for (size_t i = static_cast<size_t>(shared[g]); i < pages.size(); ++i)
      sp[b * max_suffix + static_cast<int64_t>(i) - shared[g]] = static_cast<int32_t>(pages[i]);
    suffix_lens.data_ptr<int32_t>()[b] =
        static_cast<int32_t>(cache.length(seqs[b]) - shared[g] * ps);
    rows.data_ptr<int32_t>()[b] = static_cast<int32_t>(g);
  }
  const auto device = cache.k.front().device();
  return SharedPrefixBatch{rows.to(device), prefix_pages.to(device), prefix_lens.to(device),
                           suffix_pages.to(device), suffix_lens.to(device)};
}

}  // namespace

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
  batch.shared = shared_prefix_batch(cache, seqs);
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
    auto queries = q.index_select(0, decode.offsets);
    auto decoded = decode.shared
                       ? paged_decode_attention_shared_prefix(queries, k_cache, v_cache,
                                                              *decode.shared, scale, sliding_window)
                       : paged_decode_attention(queries, k_cache, v_cache, decode.block_tables,
                                                decode.context_lens, decode.max_context_len, scale,
                                                sliding_window);
    out.index_copy_(0, decode.offsets, decoded);
  }
  return out;
}

}  // namespace align
