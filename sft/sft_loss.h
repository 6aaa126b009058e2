// The SFT objective for one micro-batch: the summed next-token negative log-likelihood over the
// positions that have a target. The caller divides by the number of targets in the whole
// optimizer step (all micro-batches), so gradient accumulation gives exactly the large batch's
// update (docs/dpo.md; transformers' Trainer does the same with num_items_in_batch).
#pragma once

#include <torch/types.h>

#include "model/phi3_model.h"

namespace align {

struct TrainBatch {
  torch::Tensor tokens;     // [B, T] int64
  torch::Tensor positions;  // [B, T] int64, restarting at 0 for each packed example
  torch::Tensor segments;   // [B, T] int64, one id per packed example (attention stays inside)
  torch::Tensor targets;    // [B, T] int64: the token to predict at t, or -100 for none
  int64_t num_targets = 0;  // targets != -100
};

// What TRL's SFTTrainer logs besides the loss, summed over the target positions (no gradient):
// mean_token_accuracy = correct / targets (the argmax is the target), entropy = entropy / targets
// (of the predicted distribution, in nats).
struct SftTokenStats {
  double targets = 0, correct = 0, entropy = 0;
};

// Sum over positions with a target of -log p(target | tokens up to t): a 0-d fp32 tensor with
// autograd. Logits are formed only at target positions, `chunk_tokens` at a time. With `stats`,
// also adds those positions' accuracy and entropy to it.
torch::Tensor sft_loss_sum(const Phi3Model& model, const TrainBatch& batch,
                           bool checkpoint_layers = false, int64_t chunk_tokens = 1024,
                           SftTokenStats* stats = nullptr);

}  // namespace align
