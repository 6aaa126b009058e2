// Causal grouped-query attention, in two implementations of one contract:
//   attention()       the reference (Hugging Face's "eager" numerics: scores = (q k^T) * scale in
//                     the model dtype, masked, softmax in fp32, cast back, then probs v in the
//                     model dtype). It materialises the [B, H, T, S] scores and autograd keeps
//                     them. The one attention reference of the tests: dense_attention, the paged
//                     decode kernels' references and the engine are checked against it. The
//                     rollout engine's prefill chunks attend through it over keys gathered from
//                     the pages (rollout/paged_forward_attention.h).
//   dense_attention() LibTorch's scaled_dot_product_attention (a flash kernel on CPU,
//                     FlashAttention or memory-efficient kernels on CUDA) for a call without a
//                     cache (training, scoring): nothing O(T x S) is kept for backward. Packed
//                     rows (segments) run one causal call per document, so no mask exists at all;
//                     the plan is built once per forward call and shared by every layer.
// Both give the same result up to the summation order (and, in bf16, where the scores round).
// The decoder layer reaches them through DenseAttentionBackend (model/decoder_layer.h).
#pragma once

#include <torch/types.h>

#include <cmath>
#include <vector>

namespace align {

// Which implementation a forward call without a cache uses (ForwardInput::attention).
enum class AttentionImpl {
  kDense,      // dense_attention(): scaled_dot_product_attention, the default
  kReference,  // attention(): Hugging Face's eager numerics, materialised scores
};

// The softmax scale of Phi-3's attention, D^-0.5 as Python's head_dim**-0.5 computes it.
inline double attention_scale(int64_t head_dim) {
  return std::pow(static_cast<double>(head_dim), -0.5);
}

// Which key slots each query may attend to, shared by all layers of one forward call.
//   query_slots [B, T] int64: the cache slot each new token occupies (cached length + t);
//   num_keys S: key slots [0, S) are visible candidates;
//   sliding_window W > 0 also hides keys with query_slot - key_slot >= W (as transformers does);
//   segments [B, T] int64 (optional, only when S == T, i.e. no cache): tokens see only keys with
//   the same segment id, so packed sequences do not attend to each other.
// Returns allowed [B, T, S] bool: key_slot <= query_slot, within the window, same segment.
torch::Tensor attention_mask(const torch::Tensor& query_slots, int64_t num_keys,
                             int64_t sliding_window, const torch::Tensor& segments);

// The reference. q [B, T, H, D]; k, v [B, Hkv, S, D]; allowed [B, T, S] bool -> [B, T, H, D] in
// q's dtype. Query head j reads KV head j / (H / Hkv). Every query must see at least one key.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& allowed, double scale);

// How dense_attention splits one call (B rows of T tokens, keys = the same T tokens), the same for
// every layer. Exactly one of three forms:
//   whole rows  (spans empty, bias undefined): one causal call over [B, T] (no segments, or one
//               segment per row);
//   spans       (bias undefined): each span is a run of tokens with one segment id; a token sees
//               the earlier tokens of its span only. Rows are cut where the segment id changes;
//               padding is whatever segment the caller gave it, as in attention_mask();
//   bias        [B, 1, T, T] in the model dtype, 0 where allowed and -inf elsewhere: the fallback
//               when a sliding window shorter than a sequence binds, or a segment id recurs in a
//               row after another one (not contiguous). One tensor for all layers.
struct DenseAttentionPlan {
  struct Span {
    int64_t row, start, length;
  };
  // Spans of one length run as one batched call (the CPU kernel's cost is mostly per call):
  // a group with one span per row, all at one start, reads q.narrow(1, start, length) (a view);
  // any other group gathers its tokens by `index`.
  struct Group {
    int64_t start = -1, length = 0;  // start >= 0: the view form
    torch::Tensor index;             // [n * length] int64 flat b * T + t, the gathered form
  };
  std::vector<Span> spans;    // by row, then start; they tile every row
  std::vector<Group> groups;  // from spans
  // [B * T] int64: where token b * T + t sits in the groups' concatenated outputs; undefined
  // when every group is a view and they tile the rows in order of start.
  torch::Tensor order;
  torch::Tensor bias;  // [B, 1, T, T] model dtype, or undefined
};

// segments [B, T] int64 or undefined; sliding_window as attention_mask(). Reads the segment
// boundaries (one per document, not per token) to the host once.
DenseAttentionPlan plan_dense_attention(int64_t B, int64_t T, int64_t sliding_window,
                                        const torch::Tensor& segments, torch::ScalarType dtype,
                                        torch::Device device);

// q [B, T, H, D]; k, v [B, T, Hkv, D] (strided views are fine: the last dim must be contiguous)
// -> [B, T, H, D] in q's dtype, attention as `plan` describes (causal in every form).
torch::Tensor dense_attention(const torch::Tensor& q, const torch::Tensor& k,
                              const torch::Tensor& v, const DenseAttentionPlan& plan, double scale);

}  // namespace align
