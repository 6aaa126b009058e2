// Causal grouped-query attention, the reference for the fused kernels (Hugging Face's "eager"
// numerics: scores = (q k^T) * scale in the model dtype, masked, softmax in fp32, cast back,
// then probs v in the model dtype).
#pragma once

#include <torch/types.h>

namespace align {

// Which key slots each query may attend to, shared by all layers of one forward call.
//   query_slots [B, T] int64: the cache slot each new token occupies (cached length + t);
//   num_keys S: key slots [0, S) are visible candidates;
//   sliding_window W > 0 also hides keys with query_slot - key_slot >= W (as transformers does);
//   segments [B, T] int64 (optional, only when S == T, i.e. no cache): tokens see only keys with
//   the same segment id, so packed sequences do not attend to each other.
// Returns allowed [B, T, S] bool: key_slot <= query_slot, within the window, same segment.
torch::Tensor attention_mask(const torch::Tensor& query_slots, int64_t num_keys,
                             int64_t sliding_window, const torch::Tensor& segments);

// q [B, T, H, D]; k, v [B, Hkv, S, D]; allowed [B, T, S] bool -> [B, T, H, D] in q's dtype.
// Query head j reads KV head j / (H / Hkv). Every query must see at least one key.
torch::Tensor attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        const torch::Tensor& allowed, double scale);

}  // namespace align
