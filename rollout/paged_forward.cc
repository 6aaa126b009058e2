#include "rollout/paged_forward.h"

#include <ATen/ATen.h>

#include <cmath>
#include <set>
#include <string>
#include <tuple>

#include "common/error.h"
#include "kernels/residual_rms_norm_op.h"
#include "kernels/rms_norm_op.h"
#include "kernels/rope_kv_write_op.h"
#include "kernels/silu_gate_op.h"
#include "model/attention.h"
#include "model/linear.h"
#include "model/lora.h"
#include "model/rope.h"
#include "rollout/paged_forward_fused.h"
#include "rollout/paged_step.h"

namespace align {
namespace {

[[noreturn]] void bad_input(const std::string& what) {
  throw InputError("paged_forward: " + what);
}

void check_rows(const ModelConfig& c, const PagedKvCache& cache,
                const std::vector<PagedRow>& rows) {
  if (rows.empty()) bad_input("no rows");
  std::set<int64_t> seen;
  std::vector<std::pair<int64_t, int64_t>> appends;
  for (size_t r = 0; r < rows.size(); ++r) {
    const PagedRow& row = rows[r];
    const std::string where =
        "row " + std::to_string(r) + " (sequence " + std::to_string(row.seq) + ")";
    if (!cache.contains(row.seq)) bad_input(where + " is not in the cache");
    if (!seen.insert(row.seq).second) bad_input(where + " appears twice");
    if (row.tokens.empty()) bad_input(where + " has no new tokens");
    for (TokenId t : row.tokens) {
      if (t < 0 || t >= c.vocab_size) {
        bad_input(where + " has token id " + std::to_string(t) + " outside [0, " +
                  std::to_string(c.vocab_size) + ")");
      }
    }
    const int64_t end = cache.length(row.seq) + static_cast<int64_t>(row.tokens.size());
    if (c.uses_long_factors(end) && !cache.long_rope(row.seq)) {
      bad_input(where + " grows to " + std::to_string(end) +
                " tokens, past original_max_position_embeddings " +
                std::to_string(c.original_max_position_embeddings) +
                " of a longrope model, onto keys rotated with the short factors; transformers runs "
                "such a call with the long factors at every position (docs/longrope.md): prefill "
                "the whole sequence into one created with long_rope");
    }
    appends.emplace_back(row.seq, static_cast<int64_t>(row.tokens.size()));
  }
  const int64_t pages = cache.pages_to_append(appends);
  if (pages > cache.free_pages()) {
    throw Error("paged_forward: the rows need up to " + std::to_string(pages) + " pages, " +
                std::to_string(cache.free_pages()) + " are free");
  }
}

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

PagedStep plan_paged_step(const Phi3Model& model, PagedKvCache& cache,
                          const std::vector<PagedRow>& rows) {
  const ModelConfig& c = model.config();
  check_rows(c, cache, rows);
  const auto device = model.device();
  PagedStep step;
  // The fused CUDA kernels where they apply (rollout/paged_forward_fused.h), the reference ops
  // otherwise.
  step.fused = fused_paged_ops(model);

  // Slots, positions and the attention rows of the packed batch.
  std::vector<int64_t> tokens, positions, slots, last;
  std::vector<uint8_t> use_long;  // per token: the sequence's keys use the long factors
  for (const PagedRow& row : rows) {
    const int64_t start = cache.length(row.seq);
    const int64_t count = static_cast<int64_t>(row.tokens.size());
    cache.append(row.seq, count);
    PagedAttentionRow a;
    a.offset = static_cast<int64_t>(tokens.size());
    a.count = count;
    a.start = start;
    for (int64_t t = 0; t < count; ++t) {
      tokens.push_back(row.tokens[static_cast<size_t>(t)]);
      positions.push_back(start + t);
      use_long.push_back(cache.long_rope(row.seq) ? 1 : 0);
      slots.push_back(cache.slot(row.seq, start + t));
    }
    // The reference attention reads every key of the row through its slots; the decode-attention
    // op reads the pages from the block tables instead (no per-token work on the host).
    if (!(step.fused.decode_attention && count == 1)) {
      std::vector<int64_t> row_slots;
      row_slots.reserve(static_cast<size_t>(start + count));
      for (int64_t t = 0; t < start + count; ++t)
        row_slots.push_back(cache.slot(row.seq, t));
      a.slots = long_tensor(row_slots, device);
    }
    if (row.logits) last.push_back(a.offset + count - 1);
    step.attn_rows.push_back(std::move(a));
  }
  step.num_tokens = static_cast<int64_t>(tokens.size());
  step.tokens = long_tensor(tokens, device);
  step.positions = long_tensor(positions, device).view({1, step.num_tokens});
  step.slots = long_tensor(slots, device);
  if (!last.empty()) step.logits_at = long_tensor(last, device);
  if (c.rope_type == RopeType::kLongrope) {
    step.long_mask = at::tensor(at::ArrayRef<uint8_t>(use_long), at::kByte)
                         .to(at::kBool)
                         .to(device)
                         .view({1, step.num_tokens});
  }
  if (step.fused.decode_attention) step.decode = paged_decode_batch(cache, rows, step.attn_rows);
  return step;
}

torch::Tensor run_paged_step(const Phi3Model& model, PagedKvCache& cache, const PagedStep& step) {
  torch::NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  const int64_t N = step.num_tokens;
  const int64_t H = c.num_heads, Hkv = c.num_kv_heads, D = c.head_dim;
  const FusedPagedOps& fused = step.fused;
  const Rope rope(c);
  const auto [cos, sin] =
      rope.cos_sin(step.positions, rope.longrope() ? step.long_mask : torch::Tensor(),
                   model.dtype());  // [1, N, R]
  LoraApply lora = model.lora_apply();
  lora.training = false;                                        // sampling: no dropout
  const double scale = std::pow(static_cast<double>(D), -0.5);  // Python's D**-0.5

  const ModelWeights& weights = model.weights();
  auto h = weights.embed.index_select(0, step.tokens);  // [N, C]
  for (size_t l = 0; l < weights.layers.size(); ++l) {
    const LayerWeights& w = weights.layers[l];
    auto x = rms_norm(h, w.input_norm, c.rms_norm_eps);
    auto qkv = lora_linear(x, w.qkv, w.lora.qkv, lora);  // [N, H*D + 2*Hkv*D]
    torch::Tensor q;                                     // [N, H, D] after RoPE
    if (fused.rope_kv_write) {
      q = rope_kv_write(qkv, cos, sin, step.slots, cache.k[l], cache.v[l]);
    } else {
      q = apply_rope(qkv.narrow(-1, 0, c.q_size).view({1, N, H, D}), cos, sin).reshape({N, H, D});
      auto k = apply_rope(qkv.narrow(-1, c.q_size, c.kv_size).view({1, N, Hkv, D}), cos, sin);
      auto v = qkv.narrow(-1, c.q_size + c.kv_size, c.kv_size).view({N, Hkv, D});
      cache.k[l].view({-1, Hkv, D}).index_copy_(0, step.slots, k.reshape({N, Hkv, D}));
      cache.v[l].view({-1, Hkv, D}).index_copy_(0, step.slots, v);
    }
    auto attn = fused.decode_attention  // [N, H, D]
                    ? paged_attention_fused(q, cache.k[l], cache.v[l], step.attn_rows, step.decode,
                                            scale, c.sliding_window)
                    : paged_attention_reference(q, cache.k[l], cache.v[l], step.attn_rows, scale,
                                                c.sliding_window);
    auto attn_out = lora_linear(attn.reshape({N, c.q_size}), w.o, w.lora.o, lora);
    if (fused.residual_rms_norm) {
      std::tie(h, x) = residual_rms_norm(h, attn_out, w.post_norm, c.rms_norm_eps);
    } else {
      h = h + attn_out;
      x = rms_norm(h, w.post_norm, c.rms_norm_eps);
    }
    auto gate_up = lora_linear(x, w.gate_up, w.lora.gate_up, lora);
    auto gated = fused.silu_gate ? silu_gate(gate_up) : silu_gate_reference(gate_up);
    h = h + lora_linear(gated, w.down, w.lora.down, lora);
  }
  if (!step.logits_at.defined()) return torch::Tensor();
  auto h_last = h.index_select(0, step.logits_at);  // [rows with logits, C]
  return model.logits(rms_norm(h_last, weights.norm, c.rms_norm_eps));
}

torch::Tensor paged_forward(const Phi3Model& model, PagedKvCache& cache,
                            const std::vector<PagedRow>& rows) {
  torch::NoGradGuard no_grad;
  const PagedStep step = plan_paged_step(model, cache, rows);
  return run_paged_step(model, cache, step);
}

}  // namespace align
