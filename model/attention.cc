#include "model/attention.h"

#include <ATen/ATen.h>

#include <limits>
#include <map>
#include <set>
#include <utility>

namespace align {
namespace {

// Scores of one query chunk are [B, H, Tc, S]; keep them near 2^26 elements.
constexpr int64_t kMaxScoreElements = int64_t{1} << 26;

torch::Tensor attention_chunk(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const torch::Tensor& allowed, double scale) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2), G = H / Hkv;
  // [B, T, H, D] -> [B, H, T, D] -> [B, Hkv, G*T, D]: head j = kv * G + g reads KV head kv.
  auto qh = q.permute({0, 2, 1, 3}).reshape({B, Hkv, G * T, D});
  auto scores = at::matmul(qh, k.transpose(-1, -2)) * scale;  // [B, Hkv, G*T, S] model dtype
  scores = scores.view({B, Hkv, G, T, S});
  scores = scores.masked_fill(allowed.logical_not().view({B, 1, 1, T, S}),
                              -std::numeric_limits<double>::infinity());
  auto probs = at::softmax(scores, -1, at::kFloat).to(q.scalar_type());
  auto out = at::matmul(probs.view({B, Hkv, G * T, S}), v);  // [B, Hkv, G*T, D]
  return out.view({B, H, T, D}).permute({0, 2, 1, 3});       // [B, T, H, D]
}

}  // namespace

torch::Tensor attention_mask(const torch::Tensor& query_slots, int64_t num_keys,
                             int64_t sliding_window, const torch::Tensor& segments) {
  auto keys = at::arange(num_keys, query_slots.options()).view({1, 1, num_keys});
  auto q = query_slots.unsqueeze(-1);  // [B, T, 1]
  auto allowed = keys <= q;
  if (sliding_window > 0) allowed = allowed.logical_and(q - keys < sliding_window);
  if (segments.defined()) {
    allowed = allowed.logical_and(segments.unsqueeze(-1) == segments.unsqueeze(1));
  }
  return allowed;  // [B, T, S]
}

torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& allowed, double scale) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), S = k.size(2);
  const int64_t per_query = std::max<int64_t>(1, B * H * S);
  const int64_t chunk = std::max<int64_t>(1, kMaxScoreElements / per_query);
  if (chunk >= T) return attention_chunk(q, k, v, allowed, scale);
  std::vector<torch::Tensor> outs;
  for (int64_t t = 0; t < T; t += chunk) {
    const int64_t n = std::min(chunk, T - t);
    outs.push_back(attention_chunk(q.narrow(1, t, n), k, v, allowed.narrow(1, t, n), scale));
  }
  return at::cat(outs, 1);
}

namespace {

// Fills plan.groups and plan.order from plan.spans.
void group_spans(DenseAttentionPlan& plan, int64_t B, int64_t T, torch::Device device) {
  std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>> by_start;  // (start, length) -> rows
  for (const auto& span : plan.spans)
    by_start[{span.start, span.length}].push_back(span.row);
  std::map<int64_t, std::vector<int64_t>> gathered;  // length -> flat token indices
  bool all_views = true;
  for (const auto& [key, rows] : by_start) {
    if (static_cast<int64_t>(rows.size()) == B) {
      plan.groups.push_back({key.first, key.second, torch::Tensor()});
      continue;
    }
    all_views = false;
    auto& index = gathered[key.second];
    for (int64_t row : rows) {
      for (int64_t t = 0; t < key.second; ++t)
        index.push_back(row * T + key.first + t);
    }
  }
  // by_start is ordered by start: views alone tile the rows in order.
  if (all_views) return;
  const auto longs = at::TensorOptions(at::kLong).device(device);
  for (auto& [length, index] : gathered)
    plan.groups.push_back({-1, length, at::tensor(index, at::kLong).to(device)});
  std::vector<torch::Tensor> tokens;  // flat token index of every group output row, in order
  for (const auto& g : plan.groups) {
    tokens.push_back(g.start >= 0 ? (at::arange(B, longs).view({B, 1}) * T + g.start +
                                     at::arange(g.length, longs).view({1, g.length}))
                                        .reshape(-1)
                                  : g.index);
  }
  plan.order = at::empty({B * T}, longs).scatter_(0, at::cat(tokens), at::arange(B * T, longs));
}

}  // namespace

DenseAttentionPlan plan_dense_attention(int64_t B, int64_t T, int64_t sliding_window,
                                        const torch::Tensor& segments, torch::ScalarType dtype,
                                        torch::Device device) {
  DenseAttentionPlan plan;
  const auto binds = [&](int64_t length) { return sliding_window > 0 && length > sliding_window; };
  bool use_bias = false;
  if (!segments.defined()) {
    use_bias = binds(T);
  } else if (T > 1) {
    // Runs of one segment id: a run starts at 0 and wherever the id changes. Only the starts
    // (one per document) and their ids come to the host.
    const torch::Tensor seg = segments.to(device);
    const torch::Tensor change = seg.narrow(1, 1, T - 1).ne(seg.narrow(1, 0, T - 1));  // [B, T-1]
    const torch::Tensor where = change.nonzero();                                      // [N, 2]
    const torch::Tensor rows = where.select(1, 0), starts = where.select(1, 1) + 1;
    const torch::Tensor ids = seg.reshape(-1).index_select(0, rows * T + starts);
    const torch::Tensor host = at::stack({rows, starts, ids}).to(torch::kCPU).contiguous();
    const torch::Tensor first = seg.select(1, 0).to(torch::kCPU).contiguous();  // [B]
    const int64_t n = host.size(1);
    const int64_t* r = host.data_ptr<int64_t>();
    const int64_t* st = r + n;
    const int64_t* id = st + n;
    size_t next = 0;
    for (int64_t b = 0; b < B && !use_bias; ++b) {
      std::set<int64_t> seen = {first.data_ptr<int64_t>()[b]};
      int64_t start = 0;
      for (; next < static_cast<size_t>(n) && r[next] == b; ++next) {
        plan.spans.push_back({b, start, st[next] - start});
        start = st[next];
        // An id seen earlier in the row: its runs attend to each other (attention_mask's rule).
        if (!seen.insert(id[next]).second) use_bias = true;
      }
      plan.spans.push_back({b, start, T - start});
    }
    for (const auto& span : plan.spans)
      use_bias = use_bias || binds(span.length);
    if (static_cast<int64_t>(plan.spans.size()) == B) plan.spans.clear();  // one run per row
  }
  if (!use_bias && !plan.spans.empty()) group_spans(plan, B, T, device);
  if (use_bias) {
    plan.spans.clear();
    const auto slots = at::arange(T, at::TensorOptions(at::kLong).device(device)).expand({B, T});
    const auto allowed = attention_mask(slots, T, sliding_window,
                                        segments.defined() ? segments.to(device) : segments);
    plan.bias = at::zeros({B, 1, T, T}, at::TensorOptions(dtype).device(device))
                    .masked_fill(allowed.logical_not().unsqueeze(1),
                                 -std::numeric_limits<double>::infinity());
  }
  return plan;
}

namespace {

// One scaled_dot_product_attention call: q [n, L, H, D], k, v [n, L, Hkv, D] -> [n, L, H, D].
torch::Tensor sdpa(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                   const torch::Tensor& bias, double scale) {
  auto qh = q.transpose(1, 2), kh = k.transpose(1, 2), vh = v.transpose(1, 2);  // [n, *, L, D]
  const int64_t G = q.size(2) / k.size(2);
  bool gqa = G > 1;
  if (gqa && q.is_cuda()) {
    // Not every CUDA kernel takes grouped heads (the memory-efficient one for fp32 does not):
    // give each query head its KV head, as transformers' repeat_kv does.
    kh = kh.repeat_interleave(G, 1);
    vh = vh.repeat_interleave(G, 1);
    gqa = false;
  }
  const std::optional<torch::Tensor> mask =
      bias.defined() ? std::optional<torch::Tensor>(bias) : std::nullopt;
  auto out = at::scaled_dot_product_attention(qh, kh, vh, mask, 0.0, !bias.defined(), scale, gqa);
  return out.transpose(1, 2);  // [n, L, H, D]
}

}  // namespace

torch::Tensor dense_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const DenseAttentionPlan& plan,
                              double scale) {
  if (plan.groups.empty()) return sdpa(q, k, v, plan.bias, scale);
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3);
  std::vector<torch::Tensor> outs;  // [n, length, H, D] per group
  outs.reserve(plan.groups.size());
  for (const auto& g : plan.groups) {
    auto part = [&](const torch::Tensor& x) {
      if (g.start >= 0) return x.narrow(1, g.start, g.length);
      return x.reshape({B * T, x.size(2), x.size(3)})
          .index_select(0, g.index)
          .view({-1, g.length, x.size(2), x.size(3)});
    };
    outs.push_back(sdpa(part(q), part(k), part(v), torch::Tensor(), scale));
  }
  if (!plan.order.defined()) return at::cat(outs, 1);  // views in order of start: [B, T, H, D]
  std::vector<torch::Tensor> flat;
  for (const auto& o : outs)
    flat.push_back(o.reshape({-1, H, D}));
  return at::cat(flat).index_select(0, plan.order).view({B, T, H, D});
}

}  // namespace align
