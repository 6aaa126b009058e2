#include "rollout/paged_forward_attention.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>

#include "kernels/kernel_support.h"
#include "model/attention.h"

namespace align {
namespace {

torch::Tensor long_tensor(const std::vector<int64_t>& v, torch::Device device) {
  return at::tensor(v, at::kLong).to(device);
}

}  // namespace

torch::Tensor paged_attention_reference(const torch::Tensor& q, const torch::Tensor& k_cache,
                                        const torch::Tensor& v_cache,
                                        const std::vector<PagedAttentionRow>& rows, double scale,
                                        int64_t sliding_window) {
  const int64_t N = q.size(0), H = q.size(1), D = q.size(2);
  const int64_t Hkv = k_cache.size(2);
  const auto device = q.device();
  auto k_flat = k_cache.view({-1, Hkv, D});  // [num_pages * page_size, Hkv, D]
  auto v_flat = v_cache.view({-1, Hkv, D});
  auto out = at::empty({N, H, D}, q.options());
  // Decode rows (one query each): one padded batch.
  std::vector<const PagedAttentionRow*> single;
  for (const auto& row : rows) {
    if (row.count == 1) single.push_back(&row);
  }
  if (!single.empty()) {
    const int64_t B = static_cast<int64_t>(single.size());
    int64_t S = 0;
    for (const auto* row : single)
      S = std::max(S, row->start + 1);
    std::vector<torch::Tensor> index;
    std::vector<int64_t> offsets, query_slots;
    for (const auto* row : single) {
      const int64_t n = row->start + 1;
      auto slots = row->slots;
      if (n < S) slots = at::cat({slots, slots.narrow(0, 0, 1).expand({S - n})});
      index.push_back(slots);
      offsets.push_back(row->offset);
      query_slots.push_back(row->start);
    }
    auto idx = at::stack(index).view(-1);                                          // [B * S]
    auto keys = k_flat.index_select(0, idx).view({B, S, Hkv, D}).transpose(1, 2);  // [B, Hkv, S, D]
    auto values = v_flat.index_select(0, idx).view({B, S, Hkv, D}).transpose(1, 2);
    auto off = long_tensor(offsets, device);
    auto queries = q.index_select(0, off).view({B, 1, H, D});
    auto allowed = attention_mask(long_tensor(query_slots, device).view({B, 1}), S, sliding_window,
                                  torch::Tensor());
    out.index_copy_(0, off, attention(queries, keys, values, allowed, scale).view({B, H, D}));
  }
  // Prefill rows: one at a time.
  for (const auto& row : rows) {
    if (row.count == 1) continue;
    const int64_t S = row.start + row.count;
    auto keys = k_flat.index_select(0, row.slots).view({1, S, Hkv, D}).transpose(1, 2);
    auto values = v_flat.index_select(0, row.slots).view({1, S, Hkv, D}).transpose(1, 2);
    auto queries = q.narrow(0, row.offset, row.count).view({1, row.count, H, D});
    auto query_slots =
        at::arange(row.start, S, at::TensorOptions().dtype(at::kLong).device(device));
    auto allowed =
        attention_mask(query_slots.view({1, row.count}), S, sliding_window, torch::Tensor());
    out.narrow(0, row.offset, row.count)
        .copy_(attention(queries, keys, values, allowed, scale).view({row.count, H, D}));
  }
  return out;
}

bool decode_reads_pages(const PagedKvCache& cache) {
  const torch::Tensor& k = cache.k.front();
  return use_kernel({&k}) || (k.device().is_cpu() && k.scalar_type() == at::kFloat);
}

namespace {

// Rows grouped by their leading page ids (see PagedDecodeBatch::shared), or nothing when no two
// rows share a full page.
std::optional<SharedPrefixBatch> shared_prefix_batch(const PagedKvCache& cache,
                                                     const std::vector<int64_t>& seqs,
                                                     bool on_cuda) {
  // See paged_forward_attention.h: on CUDA only when asked for.
  if (!cache.k.front().device().is_cpu() && !on_cuda) return std::nullopt;
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
  SharedPrefixBatch batch;
  batch.group_of_row = rows.to(device);
  batch.group_prefix_pages = prefix_pages.to(device);
  batch.group_prefix_lens = prefix_lens.to(device);
  batch.suffix_block_tables = suffix_pages.to(device);
  batch.suffix_lens = suffix_lens.to(device);
  // The kernels' row metadata, once per step from the host's lengths (no copy back per layer).
  const auto host = [](const torch::Tensor& t) {
    const int32_t* p = t.data_ptr<int32_t>();
    return std::vector<int64_t>(p, p + t.numel());
  };
  batch.plan = shared_prefix_plan(host(rows), host(prefix_lens), host(suffix_lens), device);
  return batch;
}

}  // namespace

PagedDecodeBatch paged_decode_batch(const PagedKvCache& cache, const std::vector<int64_t>& seqs,
                                    const std::vector<int64_t>& offsets,
                                    bool shared_prefix_on_cuda) {
  PagedDecodeBatch batch;
  if (seqs.empty()) return batch;
  for (int64_t seq : seqs)
    batch.max_context_len = std::max(batch.max_context_len, cache.length(seq));
  const auto device = cache.k.front().device();
  batch.offsets = long_tensor(offsets, device);
  batch.block_tables = cache.block_tables(seqs);
  batch.context_lens = cache.lengths(seqs);
  batch.shared = shared_prefix_batch(cache, seqs, shared_prefix_on_cuda);
  return batch;
}

bool prefill_reads_pages(const PagedKvCache& cache) {
  const torch::Tensor& k = cache.k.front();
  return k.device().is_cpu() && k.scalar_type() == at::kFloat;
}

PagedPrefillBatch paged_prefill_batch(const PagedKvCache& cache, const std::vector<int64_t>& seqs,
                                      const std::vector<int64_t>& offsets,
                                      const std::vector<int64_t>& counts) {
  PagedPrefillBatch batch;
  if (seqs.empty()) return batch;
  std::vector<int64_t> index;
  for (size_t r = 0; r < seqs.size(); ++r) {
    batch.starts.push_back(cache.length(seqs[r]) - counts[r]);
    for (int64_t t = 0; t < counts[r]; ++t)
      index.push_back(offsets[r] + t);
  }
  batch.counts = counts;
  batch.index = long_tensor(index, cache.k.front().device());
  batch.block_tables = cache.block_tables(seqs);
  return batch;
}

torch::Tensor paged_attention(const torch::Tensor& q, const torch::Tensor& k_cache,
                              const torch::Tensor& v_cache,
                              const std::vector<PagedAttentionRow>& gathered,
                              const PagedDecodeBatch& decode, const PagedPrefillBatch& prefill,
                              double scale, int64_t sliding_window) {
  // [N, H, D]; the reference fills the gathered rows (none: just the allocation).
  auto out = paged_attention_reference(q, k_cache, v_cache, gathered, scale, sliding_window);
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
  if (!prefill.counts.empty()) {
    auto queries = q.index_select(0, prefill.index);
    out.index_copy_(0, prefill.index,
                    paged_prefill_attention(queries, k_cache, v_cache, prefill.block_tables,
                                            prefill.starts, prefill.counts, scale, sliding_window));
  }
  return out;
}

}  // namespace align
