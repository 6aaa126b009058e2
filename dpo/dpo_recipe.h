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
// With eval.queries (the held-out generation eval, dpo/held_out_eval.h), also:
//   evals/step-N/          summary.json and results.jsonl of the policy at step N (align eval's
//                          formats): at the start (step 0, saved as a checkpoint too), every
//                          eval.every steps (each saved as a checkpoint) and at the last step
//   best.json              every eval's metric with its interval and clipped_ratio, the best
//                          step and whether it was kept (train/best_step.h); the best step's
//                          checkpoint is never removed by output.keep_last
//   metrics.jsonl          on eval steps: eval_<metric> (_low, _high),
//                          eval_completions/mean_length, eval_completions/clipped_ratio
// and with eval.keep_best (the default) the result is the best step's weights, not the last's
// (ties go to the earlier step; never a step over eval.max_clipped_ratio while one is within
// it); the last line before "dpo: done" says which step won and why.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dpo/dpo_config.h"
#include "parallel/process_group.h"

namespace align {

struct DpoRunOptions {
  bool resume = false;
  // The data-parallel job (null: single process), as for SftRunOptions::group: each rank runs
  // its share of every step's micro-batches, gradients are summed, only rank 0 writes.
  std::shared_ptr<ProcessGroup> group;
  // Names the config in messages (eval.oracle's and eval.queries' errors).
  std::string source = "the dpo config";
};

struct DpoRunResult {
  int64_t steps = 0;
  double last_loss = 0;
  double eval_loss = -1;        // -1 without an eval set
  double eval_accuracy = -1;    // eval rewards/accuracies
  double eval_margin = 0;       // eval rewards/margins
  double reference_check = -1;  // max |stored - scored| when precomputed values were checked
  int64_t best_step = -1;       // with eval.queries: the step whose weights are the result
  double best_value = 0;        // its held-out metric
};

DpoRunResult run_dpo(const DpoConfig& config, const DpoRunOptions& options);

// `align dpo --write-reference OUT`, instead of training: scores data.train with the reference
// model (reference.path, else model.path; loaded as the policy's base is) and writes its records
// with ref_chosen_logps / ref_rejected_logps to the JSONL `out_path` (for reference.type
// precomputed). Writes nothing into output.dir. One process only: a `group` of more than one rank
// is an InputError (null: a single process).
void write_dpo_reference(const DpoConfig& config, const std::string& out_path,
                         std::shared_ptr<ProcessGroup> group = nullptr);

}  // namespace align
