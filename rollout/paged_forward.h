// A forward pass of Phi3Model whose keys and values live in a PagedKvCache, for continuous
// batching: each row is one sequence of the cache plus its new tokens (a prefill chunk of any
// length, or one decode token), all rows in one call.
//
// The new tokens of all rows are packed into one [N, C] activation and run through the model's
// own decoder layers (model/decoder_layer.h) with a paged attention backend: each layer's rotated
// keys and values are written into the pages at the tokens' slots (rope_kv_write), then each
// row's queries attend to the row's whole cached sequence (rollout/paged_forward_attention.h: the
// same numerics as model/attention.cc, causal, sliding window when the config has one). Logits
// are formed only at each row's last new token. The element-wise ops pick their fused CUDA
// kernels themselves (kernels/kernel_support.h), as in every forward.
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

}  // namespace align
