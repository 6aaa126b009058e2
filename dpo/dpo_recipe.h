// `align dpo`: Direct Preference Optimization as one flat program (setup -> loop -> save ->
// cleanup), on the trainer machinery shared with SFT (train/adamw.h, grad_clip.h, lr_schedule.h,
// train_checkpoint.h, rng_state.h, metrics.h).
//
// Writes into output.dir:
//   config.json            the resolved run config
//   metrics.jsonl          per logged step (docs/metrics.md): step, epoch, loss, learning_rate,
//                          grad_norm, num_tokens, pairs, tokens_per_s, logits/chosen,
//                          logits/rejected and TRL's rewards/chosen, rewards/rejected,
//                          rewards/accuracies, rewards/margins, logps/chosen, logps/rejected (means
//                          over the step's pairs); on eval steps the same with an eval_ prefix
//   pivots/step-N.jsonl    token pairs with an eval set: one line per eval pivot (query_id,
//                          prompt_len, chosen/rejected ids, policy and reference log-probs, reward
//                          margin, correct)
//   checkpoints/step-N/    weights, optimizer, data position and RNG; --resume continues exactly
//   adapter/ | model/ | merged/   as align sft (PEFT adapter, HF model directory)
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dpo/dpo_config.h"
#include "parallel/process_group.h"

namespace align {

struct DpoRunOptions {
  bool resume = false;
  // Instead of training: score data.train with the reference model and write it with
  // ref_chosen_logps / ref_rejected_logps to this path (for reference.type precomputed).
  std::string write_reference;
  // The data-parallel job (null: single process), as for SftRunOptions::group: each rank runs
  // its share of every step's micro-batches, gradients are summed, only rank 0 writes.
  std::shared_ptr<ProcessGroup> group;
};

struct DpoRunResult {
  int64_t steps = 0;
  double last_loss = 0;
  double eval_loss = -1;        // -1 without an eval set
  double eval_accuracy = -1;    // eval rewards/accuracies
  double eval_margin = 0;       // eval rewards/margins
  double reference_check = -1;  // max |stored - scored| when precomputed values were checked
};

DpoRunResult run_dpo(const DpoConfig& config, const DpoRunOptions& options);

}  // namespace align
