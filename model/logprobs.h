// Teacher-forced per-token log-probabilities: logprobs[b, i] = log p(tokens[b, i] | tokens[b, <i])
// for i >= 1. The forward keeps only the final hidden states [B, T, C]; logits are formed for
// `chunk_tokens` positions at a time ([chunk, V] fp32) with log-softmax in fp32, so memory stays
// bounded for long sequences and large vocabularies.
#pragma once

#include <torch/types.h>

#include <vector>

#include "model/phi3_model.h"

namespace align {

struct LogprobOptions {
  int64_t chunk_tokens = 1024;  // positions per logits chunk
  torch::Tensor positions;      // [B, T] int64, optional (default 0..T-1)
  torch::Tensor segments;       // [B, T] int64, optional: packed sequences
};

// tokens [B, T] int64 -> [B, T] fp32 on the model's device. Column 0, and with segments the first
// token of every segment (nothing of its own sequence precedes it), is 0.
torch::Tensor token_logprobs(const Phi3Model& model, const torch::Tensor& tokens,
                             const LogprobOptions& options = {});

// The final hidden states [U, C] (model dtype, on the model's device) at the flat positions
// b * T + t of right-padded rows tokens [B, T] (`valid` real tokens per row): one forward, no
// logits, so callers form [chunk, V] logits themselves (DPO pairs, GRPO completions).
torch::Tensor hidden_at(const Phi3Model& model, const torch::Tensor& tokens,
                        const std::vector<int64_t>& valid, const torch::Tensor& flat_positions,
                        bool checkpoint_layers);

// hidden [N, C] (after the final norm), targets [N] int64 -> [N] fp32: log p(target | hidden).
torch::Tensor logprobs_from_hidden(const Phi3Model& model, const torch::Tensor& hidden,
                                   const torch::Tensor& targets, int64_t chunk_tokens = 1024);

}  // namespace align
