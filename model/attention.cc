#include "model/attention.h"

#include <ATen/ATen.h>

#include <limits>

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

}  // namespace align
