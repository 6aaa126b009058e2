#include "kernels/paged_attention_op.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "kernels/kernel_support.h"
#include "kernels/paged_attention_cpu.h"

#ifdef ALIGN_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "kernels/paged_attention.h"
#endif

namespace align {
namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

std::string shape_of(const torch::Tensor& t) {
  return c10::str(t.sizes());
}

// Checks q and the caches; returns {Hkv, page_size}.
std::pair<int64_t, int64_t> check_q_and_caches(const char* op, const torch::Tensor& q,
                                               const torch::Tensor& k_cache,
                                               const torch::Tensor& v_cache) {
  const std::string name(op);
  if (q.dim() != 3) throw Error(name + ": q must be [B, H, D], got " + shape_of(q));
  if (k_cache.dim() != 4 || !k_cache.sizes().equals(v_cache.sizes())) {
    throw Error(name + ": k_cache and v_cache must both be [num_pages, page_size, Hkv, D], got " +
                shape_of(k_cache) + " and " + shape_of(v_cache));
  }
  const int64_t H = q.size(1), D = q.size(2), Hkv = k_cache.size(2);
  if (k_cache.size(3) != D || Hkv == 0 || H % Hkv != 0) {
    throw Error(name + ": q " + shape_of(q) + " does not fit the cache " + shape_of(k_cache) +
                " (need equal D and H % Hkv == 0)");
  }
  const auto dtype = q.scalar_type();
  if ((dtype != torch::kFloat32 && dtype != torch::kBFloat16) || k_cache.scalar_type() != dtype ||
      v_cache.scalar_type() != dtype) {
    throw Error(name + ": q, k_cache and v_cache must all be fp32 or all bf16");
  }
  if (k_cache.device() != q.device() || v_cache.device() != q.device()) {
    throw Error(name + ": q, k_cache and v_cache must be on the same device");
  }
  if (!k_cache.is_contiguous() || !v_cache.is_contiguous()) {
    throw Error(name + ": k_cache and v_cache must be contiguous");
  }
  return {Hkv, k_cache.size(1)};
}

void check_index_tensor(const std::string& op, const char* what, const torch::Tensor& t,
                        int64_t dims, int64_t rows, const torch::Tensor& q) {
  if (t.scalar_type() != torch::kInt32 || t.dim() != dims || t.size(0) != rows) {
    throw Error(op + ": " + what + " must be int32 with " + std::to_string(dims) + " dims and " +
                std::to_string(rows) + " rows, got " + shape_of(t) + " " +
                c10::toString(t.scalar_type()));
  }
  if (t.device() != q.device()) throw Error(op + ": " + what + " must be on q's device");
}

// Lengths on the host, each checked to lie in [min_len, max_pages * page_size].
std::vector<int64_t> host_lens(const std::string& op, const char* what, const torch::Tensor& lens,
                               int64_t min_len, int64_t capacity) {
  torch::Tensor host = lens.to(torch::kCPU, torch::kInt64).contiguous();
  std::vector<int64_t> out(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + host.numel());
  for (size_t i = 0; i < out.size(); ++i) {
    if (out[i] < min_len || out[i] > capacity) {
      throw Error(op + ": " + what + "[" + std::to_string(i) + "] = " + std::to_string(out[i]) +
                  ", expected in [" + std::to_string(min_len) + ", " + std::to_string(capacity) +
                  "]");
    }
  }
  return out;
}

// The first `len` tokens of one page list, [len, Hkv, D].
torch::Tensor gather_pages(const torch::Tensor& cache, const torch::Tensor& pages, int64_t len) {
  const int64_t page_size = cache.size(1);
  const int64_t n = (len + page_size - 1) / page_size;
  torch::Tensor ids = pages.narrow(0, 0, n).to(torch::kLong);
  return cache.index_select(0, ids)
      .reshape({n * page_size, cache.size(2), cache.size(3)})
      .narrow(0, 0, len);
}

// model/attention.cc's numerics for one query row: qb [H, D]; k, v [L, Hkv, D]; allowed [L] bool.
torch::Tensor eager_decode_row(const torch::Tensor& qb, const torch::Tensor& k,
                               const torch::Tensor& v, const torch::Tensor& allowed, double scale) {
  const int64_t H = qb.size(0), D = qb.size(1), Hkv = k.size(1), L = k.size(0);
  auto qh = qb.reshape({Hkv, H / Hkv, D});
  auto scores = at::matmul(qh, k.permute({1, 2, 0})) * scale;  // [Hkv, G, L] model dtype
  scores = scores.masked_fill(allowed.logical_not().view({1, 1, L}), kNegInf);
  auto probs = at::softmax(scores, -1, at::kFloat).to(qb.scalar_type());
  return at::matmul(probs, v.permute({1, 0, 2})).reshape({H, D});  // [Hkv, G, D] -> [H, D]
}

// Attention partials of R queries over one key sequence: qs [R, H, D]; k, v [L, Hkv, D];
// key_pos [L] int64; query_pos [R] int64. Returns {o [R, H, D] fp32 normalised over these keys,
// lse [R, H] fp32, -inf where no key is visible}. Scores as in the eager path (model dtype).
std::pair<torch::Tensor, torch::Tensor> attention_partials(
    const torch::Tensor& qs, const torch::Tensor& k, const torch::Tensor& v,
    const torch::Tensor& key_pos, const torch::Tensor& query_pos, double scale, int64_t window) {
  const int64_t R = qs.size(0), H = qs.size(1), D = qs.size(2), Hkv = k.size(1);
  const int64_t G = H / Hkv, L = k.size(0);
  auto f32 = qs.options().dtype(torch::kFloat32);
  if (L == 0) {
    return {torch::zeros({R, H, D}, f32), torch::full({R, H}, kNegInf, f32)};
  }
  auto qh = qs.reshape({R, Hkv, G, D});
  auto scores = (torch::einsum("rkgd,lkd->rkgl", {qh, k}) * scale).to(torch::kFloat32);
  auto allowed = key_pos.view({1, L}) <= query_pos.view({R, 1});  // [R, L]
  if (window > 0) allowed = allowed.logical_and(query_pos.view({R, 1}) - key_pos < window);
  scores = scores.masked_fill(allowed.logical_not().view({R, 1, 1, L}), kNegInf);
  auto lse = scores.logsumexp(-1);  // [R, Hkv, G]
  auto safe = lse.masked_fill(lse.isinf(), 0.0);
  auto probs = (scores - safe.unsqueeze(-1)).exp();
  auto o = torch::einsum("rkgl,lkd->rkgd", {probs, v.to(torch::kFloat32)});
  return {o.reshape({R, H, D}), lse.reshape({R, H})};
}

// Which kernels serve a call: the CUDA ones (a CUDA build, head dims with a compiled kernel), the
// CPU twins (paged_attention_cpu.h: any head dim up to kCpuMaxHeadDim), or none (the reference).
enum class Backend { kReference, kCuda, kCpu };

Backend backend_for(const torch::Tensor& q, const torch::Tensor& k_cache,
                    const torch::Tensor& v_cache) {
  const bool no_grad = !at::GradMode::is_enabled() ||
                       !(q.requires_grad() || k_cache.requires_grad() || v_cache.requires_grad());
#ifdef ALIGN_WITH_CUDA
  if (use_kernel({&q, &k_cache, &v_cache}) &&
      kernels::paged_attention_supports_head_dim(static_cast<int>(q.size(2)))) {
    return Backend::kCuda;
  }
#endif
  if (q.device().is_cpu() && no_grad && q.size(2) <= kernels::kCpuMaxHeadDim) return Backend::kCpu;
  return Backend::kReference;
}

struct SplitPlan {
  int keys_per_split = 64;
  int num_splits = 1;
};

// CUDA: enough blocks to fill the GPU about twice, at least 64 keys per split. CPU: splits of
// kCpuKeysPerSplit keys whatever the batch, so a row's rounding does not depend on its batch.
constexpr int64_t kCpuKeysPerSplit = 256;

SplitPlan plan_splits(const torch::Device& device, int64_t blocks_without_split, int64_t max_len) {
  int64_t per = kCpuKeysPerSplit;
#ifdef ALIGN_WITH_CUDA
  if (device.is_cuda()) {
    const int64_t target = 2 * at::cuda::getCurrentDeviceProperties()->multiProcessorCount;
    const int64_t want = std::max<int64_t>(
        1, (target + blocks_without_split - 1) / std::max<int64_t>(1, blocks_without_split));
    per = std::max<int64_t>(64, (max_len + want - 1) / want);
    per = (per + 15) / 16 * 16;
  }
#else
  (void)device;
  (void)blocks_without_split;
#endif
  SplitPlan plan;
  plan.keys_per_split = static_cast<int>(per);
  plan.num_splits = static_cast<int>(std::max<int64_t>(1, (max_len + per - 1) / per));
  return plan;
}

torch::Tensor device_ints(const std::vector<int64_t>& values, const torch::Device& device) {
  return torch::tensor(values, torch::kInt64).to(torch::kInt32).to(device);
}

// One pass of the partials kernel over `num_seqs` sequences, writing slots [slot_offset, ...).
struct Pass {
  torch::Tensor pages;           // [S, max_pages] int32
  torch::Tensor lens;            // [S] int32
  torch::Tensor key_pos_offset;  // [S] int32 or undefined
  torch::Tensor row_offsets;     // [S + 1] int32
  torch::Tensor rows;            // [R] int32
  int64_t max_rows = 0;
  int64_t max_len = 0;
  bool one_split = false;  // all keys in one split (prefill: many queries per sequence already)
  SplitPlan plan;
};

void plan_pass(Pass& pass, const torch::Device& device, int64_t H, int64_t Hkv) {
  const int64_t S = pass.lens.size(0);
  // Query chunks per sequence, as the kernels cut them.
  const int64_t per_chunk = device.is_cuda() ? 16 : kernels::kCpuMaxQueries;
  const int64_t chunks = (pass.max_rows * (H / Hkv) + per_chunk - 1) / per_chunk;
  if (device.is_cuda() && S * chunks > 65535) {
    throw Error("paged attention: too many sequences for one launch");
  }
  pass.plan = plan_splits(device, S * Hkv * chunks, pass.max_len);
  if (pass.one_split) {
    pass.plan.keys_per_split =
        static_cast<int>(std::max<int64_t>(16, (pass.max_len + 15) / 16 * 16));
    pass.plan.num_splits = 1;
  }
}

#ifdef ALIGN_WITH_CUDA
void launch_cuda(const torch::Tensor& q,
                 const std::vector<kernels::PagedAttentionPartialsParams>& ps,
                 const kernels::AttentionMergeParams& m) {
  const auto dtype = kernel_dtype(q, "paged_attention");
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream(q.get_device()).stream();
  for (const auto& p : ps) {
    const cudaError_t status = kernels::launch_paged_attention_partials(p, dtype, stream);
    if (status != cudaSuccess) {
      throw Error(std::string("paged attention: partials launch failed: ") +
                  cudaGetErrorString(status));
    }
  }
  const cudaError_t status = kernels::launch_attention_merge(m, dtype, stream);
  if (status != cudaSuccess) {
    throw Error(std::string("paged attention: merge launch failed: ") + cudaGetErrorString(status));
  }
}
#endif

void run_cpu(const torch::Tensor& q, const std::vector<kernels::PagedAttentionPartialsParams>& ps,
             const kernels::AttentionMergeParams& m) {
  const auto dtype = kernel_dtype(q, "paged_attention");
  // Work items differ widely in cost (a shared prefix of hundreds of keys for many queries, a
  // suffix of a few keys for one row), so threads take them one at a time from a counter rather
  // than in equal contiguous ranges.
  for (const auto& p : ps) {
    const int64_t items = kernels::paged_attention_partials_cpu_items(p);
    std::atomic<int64_t> next{0};
    at::parallel_for(0, std::min<int64_t>(items, at::get_num_threads()), 1, [&](int64_t, int64_t) {
      for (int64_t item = next++; item < items; item = next++)
        kernels::paged_attention_partials_cpu(p, dtype, item, item + 1);
    });
  }
  at::parallel_for(
      0, static_cast<int64_t>(m.batch) * m.num_heads, 16,
      [&](int64_t begin, int64_t end) { kernels::attention_merge_cpu(m, dtype, begin, end); });
}

torch::Tensor run_kernels(const torch::Tensor& q_in, const torch::Tensor& k_cache,
                          const torch::Tensor& v_cache, std::vector<Pass>& passes,
                          const torch::Tensor& query_pos, double scale, int64_t window) {
#ifdef ALIGN_WITH_CUDA
  std::optional<c10::cuda::CUDAGuard> guard;
  if (q_in.is_cuda()) guard.emplace(q_in.device());
#endif
  torch::Tensor q = q_in.stride(2) == 1 ? q_in : q_in.contiguous();
  const int64_t B = q.size(0), H = q.size(1), D = q.size(2), Hkv = k_cache.size(2);
  int num_slots = 0;
  for (auto& pass : passes) {
    plan_pass(pass, q.device(), H, Hkv);
    num_slots += pass.plan.num_splits;
  }
  auto f32 = q.options().dtype(torch::kFloat32);
  torch::Tensor partial_out = torch::empty({B, H, num_slots, D}, f32);
  torch::Tensor partial_lse = torch::empty({B, H, num_slots}, f32);
  torch::Tensor out = torch::empty({B, H, D}, q.options());
  std::vector<kernels::PagedAttentionPartialsParams> params;
  int slot = 0;
  for (auto& pass : passes) {
    kernels::PagedAttentionPartialsParams p;
    p.q = q.data_ptr();
    p.q_row_stride = q.stride(0);
    p.q_head_stride = q.stride(1);
    p.k_cache = k_cache.data_ptr();
    p.v_cache = v_cache.data_ptr();
    p.page_size = static_cast<int>(k_cache.size(1));
    p.num_heads = static_cast<int>(H);
    p.num_kv_heads = static_cast<int>(Hkv);
    p.head_dim = static_cast<int>(D);
    p.num_seqs = static_cast<int>(pass.lens.size(0));
    p.pages = pass.pages.data_ptr<int32_t>();
    p.pages_stride = pass.pages.stride(0);
    p.lens = pass.lens.data_ptr<int32_t>();
    p.key_pos_offset =
        pass.key_pos_offset.defined() ? pass.key_pos_offset.data_ptr<int32_t>() : nullptr;
    p.row_offsets = pass.row_offsets.data_ptr<int32_t>();
    p.rows = pass.rows.data_ptr<int32_t>();
    p.max_rows_per_seq = static_cast<int>(pass.max_rows);
    p.query_pos = query_pos.data_ptr<int32_t>();
    p.scale = static_cast<float>(scale);
    p.sliding_window = static_cast<int>(window);
    p.keys_per_split = pass.plan.keys_per_split;
    p.num_splits = pass.plan.num_splits;
    p.slot_offset = slot;
    p.num_slots = num_slots;
    p.partial_out = partial_out.data_ptr<float>();
    p.partial_lse = partial_lse.data_ptr<float>();
    params.push_back(p);
    slot += pass.plan.num_splits;
  }
  kernels::AttentionMergeParams m;
  m.partial_out = partial_out.data_ptr<float>();
  m.partial_lse = partial_lse.data_ptr<float>();
  m.num_slots = num_slots;
  m.batch = static_cast<int>(B);
  m.num_heads = static_cast<int>(H);
  m.head_dim = static_cast<int>(D);
  m.out = out.data_ptr();
#ifdef ALIGN_WITH_CUDA
  if (q.is_cuda()) {
    launch_cuda(q, params, m);
    return out;
  }
#endif
  run_cpu(q, params, m);
  return out;
}

}  // namespace

torch::Tensor paged_decode_attention_reference(const torch::Tensor& q, const torch::Tensor& k_cache,
                                               const torch::Tensor& v_cache,
                                               const torch::Tensor& block_tables,
                                               const torch::Tensor& context_lens, double scale,
                                               int64_t sliding_window) {
  const std::string op = "paged_decode_attention";
  const int64_t page_size = check_q_and_caches(op.c_str(), q, k_cache, v_cache).second;
  const int64_t B = q.size(0);
  check_index_tensor(op, "block_tables", block_tables, 2, B, q);
  check_index_tensor(op, "context_lens", context_lens, 1, B, q);
  const auto lens =
      host_lens(op, "context_lens", context_lens, 1, block_tables.size(1) * page_size);
  std::vector<torch::Tensor> outs;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = lens[b];
    auto k = gather_pages(k_cache, block_tables[b], L);
    auto v = gather_pages(v_cache, block_tables[b], L);
    auto key_pos = torch::arange(L, q.options().dtype(torch::kLong));
    auto allowed = torch::ones({L}, q.options().dtype(torch::kBool));
    if (sliding_window > 0) allowed = key_pos.neg() + (L - 1) < sliding_window;
    outs.push_back(eager_decode_row(q[b], k, v, allowed, scale));
  }
  return torch::stack(outs);  // [B, H, D]
}

torch::Tensor paged_decode_attention(const torch::Tensor& q, const torch::Tensor& k_cache,
                                     const torch::Tensor& v_cache,
                                     const torch::Tensor& block_tables,
                                     const torch::Tensor& context_lens, int64_t max_context_len,
                                     double scale, int64_t sliding_window) {
  const std::string op = "paged_decode_attention";
  const int64_t page_size = check_q_and_caches(op.c_str(), q, k_cache, v_cache).second;
  const int64_t B = q.size(0);
  check_index_tensor(op, "block_tables", block_tables, 2, B, q);
  check_index_tensor(op, "context_lens", context_lens, 1, B, q);
  const int64_t capacity = block_tables.size(1) * page_size;
  if (max_context_len < 1 || max_context_len > capacity) {
    throw Error(op + ": max_context_len = " + std::to_string(max_context_len) +
                ", expected in [1, " + std::to_string(capacity) + "]");
  }
  const Backend backend = backend_for(q, k_cache, v_cache);
  if (backend != Backend::kReference) {
    // CUDA: no host copy of context_lens: the query positions are computed on the device and the
    // key splits are sized by the caller's max_context_len. CPU: the lengths are checked first
    // (the host has them at no cost).
    if (backend == Backend::kCpu) host_lens(op, "context_lens", context_lens, 1, max_context_len);
    // One query row per sequence: offsets 0..B and rows 0..B-1, made on the device (no host copy,
    // so a CUDA graph can capture the call: rollout/decode_graphs.h).
    const auto ints = q.options().dtype(torch::kInt32);
    Pass pass;
    pass.pages = block_tables.stride(1) == 1 ? block_tables : block_tables.contiguous();
    pass.lens = context_lens.contiguous();
    pass.row_offsets = torch::arange(B + 1, ints);
    pass.rows = torch::arange(B, ints);
    pass.max_rows = B > 0 ? 1 : 0;
    pass.max_len = max_context_len;
    std::vector<Pass> passes{pass};
    torch::Tensor query_pos = (pass.lens - 1).to(torch::kInt32).contiguous();
    return run_kernels(q, k_cache, v_cache, passes, query_pos, scale, sliding_window);
  }
  host_lens(op, "context_lens", context_lens, 1, max_context_len);  // each in [1, max]
  return paged_decode_attention_reference(q, k_cache, v_cache, block_tables, context_lens, scale,
                                          sliding_window);
}

namespace {

// Checks a prefill call; returns the total of the counts (q's rows).
int64_t check_prefill(const torch::Tensor& q, const torch::Tensor& k_cache,
                      const torch::Tensor& v_cache, const torch::Tensor& block_tables,
                      const std::vector<int64_t>& starts, const std::vector<int64_t>& counts) {
  const std::string op = "paged_prefill_attention";
  const int64_t page_size = check_q_and_caches(op.c_str(), q, k_cache, v_cache).second;
  const auto R = static_cast<int64_t>(counts.size());
  if (static_cast<int64_t>(starts.size()) != R) {
    throw Error(op + ": " + std::to_string(starts.size()) + " starts for " + std::to_string(R) +
                " counts");
  }
  check_index_tensor(op, "block_tables", block_tables, 2, R, q);
  const int64_t capacity = block_tables.size(1) * page_size;
  int64_t total = 0;
  for (int64_t r = 0; r < R; ++r) {
    if (counts[r] < 1 || starts[r] < 0 || starts[r] + counts[r] > capacity) {
      throw Error(op + ": row " + std::to_string(r) + " has start " + std::to_string(starts[r]) +
                  " and count " + std::to_string(counts[r]) +
                  ", expected count >= 1, start >= 0 and start + count <= " +
                  std::to_string(capacity) + " (the block table's pages)");
    }
    total += counts[r];
  }
  if (q.size(0) != total) {
    throw Error(op + ": q has " + std::to_string(q.size(0)) + " rows, the counts add up to " +
                std::to_string(total));
  }
  return total;
}

}  // namespace

torch::Tensor paged_prefill_attention_reference(
    const torch::Tensor& q, const torch::Tensor& k_cache, const torch::Tensor& v_cache,
    const torch::Tensor& block_tables, const std::vector<int64_t>& starts,
    const std::vector<int64_t>& counts, double scale, int64_t sliding_window) {
  check_prefill(q, k_cache, v_cache, block_tables, starts, counts);
  auto longs = q.options().dtype(torch::kLong);
  std::vector<torch::Tensor> outs;
  int64_t offset = 0;
  for (size_t r = 0; r < counts.size(); ++r) {
    const int64_t L = starts[r] + counts[r];
    auto k = gather_pages(k_cache, block_tables[static_cast<int64_t>(r)], L);
    auto v = gather_pages(v_cache, block_tables[static_cast<int64_t>(r)], L);
    auto o = attention_partials(q.narrow(0, offset, counts[r]), k, v, torch::arange(L, longs),
                                torch::arange(starts[r], L, longs), scale, sliding_window)
                 .first;
    outs.push_back(o.to(q.scalar_type()));
    offset += counts[r];
  }
  return torch::cat(outs);
}

torch::Tensor paged_prefill_attention(const torch::Tensor& q, const torch::Tensor& k_cache,
                                      const torch::Tensor& v_cache,
                                      const torch::Tensor& block_tables,
                                      const std::vector<int64_t>& starts,
                                      const std::vector<int64_t>& counts, double scale,
                                      int64_t sliding_window) {
  if (backend_for(q, k_cache, v_cache) != Backend::kCpu) {
    return paged_prefill_attention_reference(q, k_cache, v_cache, block_tables, starts, counts,
                                             scale, sliding_window);
  }
  const int64_t N = check_prefill(q, k_cache, v_cache, block_tables, starts, counts);
  const auto R = static_cast<int64_t>(counts.size());
  // One sequence per row; its query rows are its tokens, each at its own position.
  std::vector<int64_t> lens(R), row_offsets(R + 1, 0), rows(N), qpos(N);
  int64_t max_rows = 0, max_len = 0;
  for (int64_t r = 0; r < R; ++r) {
    lens[r] = starts[r] + counts[r];
    row_offsets[r + 1] = row_offsets[r] + counts[r];
    for (int64_t t = 0; t < counts[r]; ++t) {
      rows[row_offsets[r] + t] = row_offsets[r] + t;
      qpos[row_offsets[r] + t] = starts[r] + t;
    }
    max_rows = std::max(max_rows, counts[r]);
    max_len = std::max(max_len, lens[r]);
  }
  const auto device = q.device();
  Pass pass;
  pass.pages = block_tables.stride(1) == 1 ? block_tables : block_tables.contiguous();
  pass.lens = device_ints(lens, device);
  pass.row_offsets = device_ints(row_offsets, device);
  pass.rows = device_ints(rows, device);
  pass.max_rows = max_rows;
  pass.max_len = max_len;
  // One split per row: the partials stay [N, H, 1, D] however long the context, and a row's
  // chunks of queries give the threads enough work items.
  pass.one_split = true;
  std::vector<Pass> passes{pass};
  return run_kernels(q, k_cache, v_cache, passes, device_ints(qpos, device), scale, sliding_window);
}

namespace {

// Validated host copies of a shared-prefix batch.
struct SharedPrefixHost {
  std::vector<int64_t> group_of_row, prefix_lens, suffix_lens;
};

// The shapes, dtypes and devices of a shared-prefix call (no lengths read); returns page_size.
int64_t check_shared_prefix_shapes(const torch::Tensor& q, const torch::Tensor& k_cache,
                                   const torch::Tensor& v_cache, const SharedPrefixBatch& s) {
  const std::string op = "paged_decode_attention_shared_prefix";
  const int64_t page_size = check_q_and_caches(op.c_str(), q, k_cache, v_cache).second;
  const int64_t B = q.size(0);
  check_index_tensor(op, "group_of_row", s.group_of_row, 1, B, q);
  const int64_t G = s.group_prefix_lens.defined() ? s.group_prefix_lens.size(0) : 0;
  check_index_tensor(op, "group_prefix_lens", s.group_prefix_lens, 1, G, q);
  check_index_tensor(op, "group_prefix_pages", s.group_prefix_pages, 2, G, q);
  check_index_tensor(op, "suffix_block_tables", s.suffix_block_tables, 2, B, q);
  check_index_tensor(op, "suffix_lens", s.suffix_lens, 1, B, q);
  return page_size;
}

// The shapes, then the lengths read back to the host and checked against the tables.
SharedPrefixHost check_shared_prefix(const torch::Tensor& q, const torch::Tensor& k_cache,
                                     const torch::Tensor& v_cache, const SharedPrefixBatch& s) {
  const std::string op = "paged_decode_attention_shared_prefix";
  const int64_t page_size = check_shared_prefix_shapes(q, k_cache, v_cache, s);
  const int64_t B = q.size(0);
  const int64_t G = s.group_prefix_lens.size(0);
  SharedPrefixHost h;
  h.group_of_row = host_lens(op, "group_of_row", s.group_of_row, 0, G - 1);
  h.prefix_lens = host_lens(op, "group_prefix_lens", s.group_prefix_lens, 0,
                            s.group_prefix_pages.size(1) * page_size);
  h.suffix_lens =
      host_lens(op, "suffix_lens", s.suffix_lens, 0, s.suffix_block_tables.size(1) * page_size);
  for (int64_t b = 0; b < B; ++b) {
    if (h.prefix_lens[h.group_of_row[b]] + h.suffix_lens[b] < 1) {
      throw Error(op + ": row " + std::to_string(b) + " has no key (prefix and suffix empty)");
    }
  }
  return h;
}

}  // namespace

SharedPrefixBatch::Plan shared_prefix_plan(std::vector<int64_t> group_of_row,
                                           std::vector<int64_t> prefix_lens,
                                           std::vector<int64_t> suffix_lens,
                                           const torch::Device& device) {
  const std::string op = "shared_prefix_plan";
  const auto B = static_cast<int64_t>(group_of_row.size());
  const auto G = static_cast<int64_t>(prefix_lens.size());
  if (static_cast<int64_t>(suffix_lens.size()) != B) {
    throw Error(op + ": " + std::to_string(suffix_lens.size()) + " suffix lengths for " +
                std::to_string(B) + " rows");
  }
  for (int64_t g = 0; g < G; ++g) {
    if (prefix_lens[g] < 0) throw Error(op + ": group " + std::to_string(g) + " has P < 0");
  }
  // Rows grouped by their group (CSR), the query positions and each suffix's first position.
  std::vector<int64_t> counts(G, 0), group_offsets(G + 1, 0), group_rows(B), qpos(B), key_off(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t g = group_of_row[b];
    if (g < 0 || g >= G || suffix_lens[b] < 0 || prefix_lens[g] + suffix_lens[b] < 1) {
      throw Error(op + ": row " + std::to_string(b) + " has group " + std::to_string(g) + " of " +
                  std::to_string(G) + " and suffix " + std::to_string(suffix_lens[b]) +
                  ": expected a group in range and at least one key");
    }
    ++counts[g];
  }
  for (int64_t g = 0; g < G; ++g)
    group_offsets[g + 1] = group_offsets[g] + counts[g];
  std::vector<int64_t> fill(group_offsets.begin(), group_offsets.end() - 1);
  std::vector<int64_t> row_offsets(B + 1), rows(B);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t g = group_of_row[b];
    group_rows[fill[g]++] = b;
    key_off[b] = prefix_lens[g];
    qpos[b] = prefix_lens[g] + suffix_lens[b] - 1;
    row_offsets[b + 1] = b + 1;
    rows[b] = b;
  }
  SharedPrefixBatch::Plan p;
  p.group_offsets = device_ints(group_offsets, device);
  p.group_rows = device_ints(group_rows, device);
  p.key_pos_offset = device_ints(key_off, device);
  p.row_offsets = device_ints(row_offsets, device);
  p.rows = device_ints(rows, device);
  p.query_pos = device_ints(qpos, device);
  p.max_group_rows = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
  p.max_prefix_len =
      prefix_lens.empty() ? 0 : *std::max_element(prefix_lens.begin(), prefix_lens.end());
  p.max_suffix_len =
      suffix_lens.empty() ? 0 : *std::max_element(suffix_lens.begin(), suffix_lens.end());
  p.group_of_row = std::move(group_of_row);
  p.prefix_lens = std::move(prefix_lens);
  p.suffix_lens = std::move(suffix_lens);
  return p;
}

torch::Tensor paged_decode_attention_shared_prefix_reference(const torch::Tensor& q,
                                                             const torch::Tensor& k_cache,
                                                             const torch::Tensor& v_cache,
                                                             const SharedPrefixBatch& batch,
                                                             double scale, int64_t sliding_window) {
  const SharedPrefixHost h = check_shared_prefix(q, k_cache, v_cache, batch);
  const int64_t B = q.size(0), G = static_cast<int64_t>(h.prefix_lens.size());
  auto longs = q.options().dtype(torch::kLong);
  std::vector<torch::Tensor> o_rows(B), lse_rows(B);
  // The prefix partials: once per group, for all its rows' queries together.
  for (int64_t g = 0; g < G; ++g) {
    std::vector<int64_t> rows, qpos;
    for (int64_t b = 0; b < B; ++b) {
      if (h.group_of_row[b] != g) continue;
      rows.push_back(b);
      qpos.push_back(h.prefix_lens[g] + h.suffix_lens[b] - 1);
    }
    if (rows.empty()) continue;
    const int64_t P = h.prefix_lens[g];
    auto k = gather_pages(k_cache, batch.group_prefix_pages[g], P);
    auto v = gather_pages(v_cache, batch.group_prefix_pages[g], P);
    auto qs = q.index_select(0, torch::tensor(rows).to(q.device()));
    auto [o, lse] = attention_partials(qs, k, v, torch::arange(P, longs),
                                       torch::tensor(qpos).to(q.device()), scale, sliding_window);
    for (size_t r = 0; r < rows.size(); ++r) {
      o_rows[rows[r]] = o[r];
      lse_rows[rows[r]] = lse[r];
    }
  }
  // Each row's suffix partials, merged with its group's prefix partials by log-sum-exp.
  std::vector<torch::Tensor> outs;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t P = h.prefix_lens[h.group_of_row[b]], S = h.suffix_lens[b];
    auto k = gather_pages(k_cache, batch.suffix_block_tables[b], S);
    auto v = gather_pages(v_cache, batch.suffix_block_tables[b], S);
    auto [o, lse] = attention_partials(q[b].unsqueeze(0), k, v, torch::arange(P, P + S, longs),
                                       torch::full({1}, P + S - 1, longs), scale, sliding_window);
    auto lse_both = torch::stack({lse_rows[b], lse[0]});  // [2, H]
    auto m = std::get<0>(lse_both.max(0));
    auto w = (lse_both - m.masked_fill(m.isinf(), 0.0)).exp();                    // [2, H]
    auto merged = (w[0].unsqueeze(-1) * o_rows[b] + w[1].unsqueeze(-1) * o[0]) /  // [H, D]
                  (w[0] + w[1]).unsqueeze(-1);
    outs.push_back(merged.to(q.scalar_type()));
  }
  return torch::stack(outs);  // [B, H, D]
}

torch::Tensor paged_decode_attention_shared_prefix(const torch::Tensor& q,
                                                   const torch::Tensor& k_cache,
                                                   const torch::Tensor& v_cache,
                                                   const SharedPrefixBatch& batch, double scale,
                                                   int64_t sliding_window) {
  if (backend_for(q, k_cache, v_cache) != Backend::kReference) {
    std::optional<SharedPrefixBatch::Plan> made;
    if (batch.plan) {
      check_shared_prefix_shapes(q, k_cache, v_cache, batch);
      if (static_cast<int64_t>(batch.plan->group_of_row.size()) != q.size(0)) {
        throw Error("paged_decode_attention_shared_prefix: a plan of " +
                    std::to_string(batch.plan->group_of_row.size()) + " rows for " +
                    std::to_string(q.size(0)) + " queries");
      }
    } else {
      SharedPrefixHost h = check_shared_prefix(q, k_cache, v_cache, batch);
      made = shared_prefix_plan(std::move(h.group_of_row), std::move(h.prefix_lens),
                                std::move(h.suffix_lens), q.device());
    }
    const SharedPrefixBatch::Plan& plan = batch.plan ? *batch.plan : *made;
    Pass prefix;
    prefix.pages = batch.group_prefix_pages.contiguous();
    prefix.lens = batch.group_prefix_lens.contiguous();
    prefix.row_offsets = plan.group_offsets;
    prefix.rows = plan.group_rows;
    prefix.max_rows = plan.max_group_rows;
    prefix.max_len = plan.max_prefix_len;
    Pass suffix;
    suffix.pages = batch.suffix_block_tables.contiguous();
    suffix.lens = batch.suffix_lens.contiguous();
    suffix.key_pos_offset = plan.key_pos_offset;
    suffix.row_offsets = plan.row_offsets;
    suffix.rows = plan.rows;
    suffix.max_rows = q.size(0) > 0 ? 1 : 0;
    suffix.max_len = plan.max_suffix_len;
    std::vector<Pass> passes{prefix, suffix};
    return run_kernels(q, k_cache, v_cache, passes, plan.query_pos, scale, sliding_window);
  }
  return paged_decode_attention_shared_prefix_reference(q, k_cache, v_cache, batch, scale,
                                                        sliding_window);
}

}  // namespace align
