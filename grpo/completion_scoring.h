// Per-token log-probabilities and entropies of sampled completions under a model, one forward
// pass per micro-batch: what GRPO's loss reads for the policy (with autograd), the reference and,
// when needed, the old policy.
//
// A CompletionBatch is B rows prompt + completion (right padded to T); the completion tokens of
// row b are read at flat positions b * T + (prompt length - 1 + j), j < completion length, and
// land at [b, j] of the [B, Tc] outputs (Tc: the longest completion; padding is 0 with mask 0).
// Logits are formed only there ([n, V] fp32, chunked), never [B, T, V].
//
// As TRL's GRPOTrainer (its fused LM head), the log-probs and entropies are those of the
// distribution at the sampling temperature: softmax(logits / temperature). At temperature 1 they
// are the engine's sampled log-probs (rollout/engine.h), which is why a run with num_iterations
// > 1 takes pi_old from the engine instead of a second forward (grpo/grpo_recipe.h).
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "data/token_id.h"
#include "model/phi3_model.h"

namespace align {

struct CompletionBatch {
  torch::Tensor tokens;          // [B, T] int64 prompt + completion, right padded
  std::vector<int64_t> valid;    // [B] real tokens per row
  torch::Tensor mask;            // [B, Tc] fp32: 1 on completion tokens
  torch::Tensor positions;       // [U] int64 flat positions whose hidden state predicts a token
  torch::Tensor targets;         // [U] int64 the completion token read there
  torch::Tensor slots;           // [U] int64 flat index b * Tc + j into the outputs
  int64_t completion_width = 0;  // Tc
  int64_t real_tokens = 0;       // sum of valid
};

// Rows prompts[b] + completions[b]; every completion has at least one token.
CompletionBatch make_completion_batch(const std::vector<const std::vector<TokenId>*>& prompts,
                                      const std::vector<const std::vector<TokenId>*>& completions,
                                      int64_t pad_id);

struct CompletionScores {
  torch::Tensor logps;      // [B, Tc] fp32 log p(token) at the temperature; autograd follows
                            // grad mode
  torch::Tensor entropies;  // [B, Tc] fp32 -sum_v p log p at the temperature, detached;
                            // undefined unless asked for
};

// `checkpoint_layers`: activation checkpointing; `chunk_tokens`: positions per logits chunk.
CompletionScores score_completions(const Phi3Model& model, const CompletionBatch& batch,
                                   double temperature, bool with_entropy,
                                   bool checkpoint_layers = false, int64_t chunk_tokens = 1024);

}  // namespace align
