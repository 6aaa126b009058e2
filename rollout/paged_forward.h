// A forward pass of Phi3Model whose keys and values live in a PagedKvCache, for continuous
// batching: each row is one sequence of the cache plus its new tokens (a prefill chunk of any
// length, or one decode token), all rows in one call.
//
// Per layer this is Phi3Model's layer (model/phi3_model.h) with the model's own weights and the
// reference ops (rms_norm, lora_linear, Rope::cos_sin + apply_rope, swiglu, attention): the new
// tokens of all rows are packed into one [N, C] activation; their keys and values are written into
// the pages at their slots; then each row's queries attend to the row's whole cached sequence
// (gathered from the pages into dense [Hkv, S, D] per row, the same numerics as model/attention.cc:
// causal, sliding window when the config has one). Logits are formed only at each row's last new
// token. On CUDA (no LoRA, fp32/bf16, a build with the kernels) fused kernels replace the
// reference ops where they apply: rollout/paged_forward_fused.h.
//
// Longrope models (docs/longrope.md): a row's new keys and queries are rotated with the factor set
// of its sequence (PagedKvCache::long_rope), so every key of a sequence shares one set. A row
// whose sequence would grow past original_max_position_embeddings on short-factor keys throws
// InputError: transformers re-runs the whole sequence with the long factors at that point, and the
// caller (the engine) does the same into a long_rope sequence.
#pragma once

#include <torch/types.h>

#include <vector>

#include "data/token_id.h"
#include "model/phi3_model.h"
#include "rollout/paged_kv_cache.h"

namespace align {

struct PagedRow {
  int64_t seq = -1;             // sequence id in the cache
  std::vector<TokenId> tokens;  // new tokens, placed after the sequence's cached length
  bool logits = true;           // logits at the last new token
};

// Appends each row's tokens to its sequence (cache.append: pages, copy-on-write), runs the model
// and returns logits [number of rows with `logits`, V] fp32, in row order (undefined when none).
// A sequence may appear in at most one row. No gradients are kept.
torch::Tensor paged_forward(const Phi3Model& model, PagedKvCache& cache,
                            const std::vector<PagedRow>& rows);

// One row of a paged attention call: queries [offset, offset + count) of the packed batch are the
// tokens at positions [start, start + count) of a sequence whose keys (all start + count of them,
// already written) lie at `slots`.
struct PagedAttentionRow {
  int64_t offset = 0;
  int64_t count = 0;
  int64_t start = 0;
  torch::Tensor slots;  // [start + count] int64 flat slots, on the cache's device (paged_forward
                        // leaves it undefined for decode rows the decode-attention op serves)
};

// q [N, H, D] (after RoPE); k_cache, v_cache [num_pages, page_size, Hkv, D] -> [N, H, D] in q's
// dtype. Rows with a single query are batched together (keys gathered and right-padded, padding
// masked); longer rows run one at a time.
torch::Tensor paged_attention_reference(const torch::Tensor& q, const torch::Tensor& k_cache,
                                        const torch::Tensor& v_cache,
                                        const std::vector<PagedAttentionRow>& rows, double scale,
                                        int64_t sliding_window);

}  // namespace align
