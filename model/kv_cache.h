// A dense key/value cache for prefill and incremental decode: one buffer per layer, one row per
// sequence, slots [0, lengths[b]) of row b hold its cached tokens. The paged, continuously batched
// cache of the rollout engine keeps the same contract with a different layout.
//
// Contract with Phi3Model::forward (see phi3_model.h):
//   - new tokens of row b are written to slots [lengths[b], lengths[b] + T) of every layer;
//     lengths[b] then grows by the row's valid token count (the rest is right padding, overwritten
//     by the next call), so every call needs lengths[b] + T <= capacity;
//   - the query at slot lengths[b] + t sees slots [0, lengths[b] + t] (its cached prefix plus the
//     causal part of the new tokens), within the sliding window when the config has one (the
//     cache keeps every token; the window only masks);
//   - keys are cached after RoPE. Longrope rotates every position of a sequence with the short or
//     the long factors depending on the sequence's length, so a row cached with the short factors
//     cannot be extended past original_max_position_embeddings: needs_reprefill() says when, and
//     the forward throws; prefill the whole row again (transformers' generate() does the same).
//     A chunked prefill whose final length is known passes it as ForwardInput::rope_lengths so
//     every chunk uses the same factors.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "model/config.h"

namespace align {

struct KvCache {
  std::vector<torch::Tensor> k;    // per layer [B, Hkv, S_max, D], model dtype, after RoPE
  std::vector<torch::Tensor> v;    // per layer [B, Hkv, S_max, D], model dtype
  std::vector<int64_t> lengths;    // [B] cached tokens per row
  std::vector<uint8_t> long_rope;  // [B] 1 when the row's keys were rotated with long factors

  // Zero-filled buffers for `batch` rows of `capacity` slots (S_max).
  static KvCache allocate(const ModelConfig& config, int64_t batch, int64_t capacity,
                          torch::ScalarType dtype, torch::Device device);

  int64_t batch() const { return static_cast<int64_t>(lengths.size()); }
  int64_t capacity() const { return k.empty() ? 0 : k[0].size(2); }
  int64_t bytes() const;    // memory held by the buffers
  void reset(int64_t row);  // forget a row's tokens (its slots are overwritten later)
  void reset_all();
};

// True when extending `row` so that its sequence is `seq_len` tokens long needs the longrope long
// factors but its cached keys were rotated with the short ones: prefill the row again instead.
bool needs_reprefill(const ModelConfig& config, const KvCache& cache, int64_t row, int64_t seq_len);

}  // namespace align
