// `align grpo`: Group Relative Policy Optimization (DeepSeekMath, arXiv 2402.03300; the RL phase
// of Phi-4-reasoning-plus, arXiv 2504.21318) as one flat program (setup -> loop -> save ->
// cleanup), on the trainer machinery of sft and dpo (train/train_run.h) and the rollout engine.
//
// Every num_iterations optimizer steps, a generation (grpo/generation.h): the next
// prompts_per_step queries, num_generations completions each sampled by the engine from the
// policy as it is (LoRA applied, in the same process: no copy, no weight sync), graded by the
// reward functions (grpo/rewards.h), with group-relative advantages. Each optimizer step then
// scores the generation's completions with the policy (grpo/completion_scoring.h) in
// training.grad_accum micro-batches (over the ranks) and takes the loss of grpo/grpo_loss.h.
// pi_old: the policy itself with num_iterations 1 (ratio 1, no extra forward: TRL's shortcut);
// otherwise the engine's sampled log-probs at temperature 1 (no second forward; equal to the
// trainer's, tests/grpo), or one no-grad forward per generation at another temperature.
//
// Writes into output.dir what align dpo writes (config.json, metrics.jsonl, TensorBoard with
// output.report_to, checkpoints/step-N/, adapter/ | model/ | merged/, and with eval.queries
// evals/step-N/ and best.json, the result being the best step's weights under eval.keep_best),
// and with grpo.log_completions completions/step-N.jsonl (the generation first used at step N:
// prompt, completion, rewards, advantage per rollout; grpo/generation.h).
// metrics.jsonl (docs/metrics.md), TRL's names: step, epoch, loss, learning_rate, grad_norm,
// num_tokens (prompt + completion tokens sampled so far), reward, reward_std,
// rewards/<name>/mean and /std, frac_reward_zero_std, completions/mean_length, min_length,
// max_length, clipped_ratio, mean_terminated_length, min_terminated_length,
// max_terminated_length, kl (beta > 0), entropy, clip_ratio/low_mean, clip_ratio/high_mean,
// clip_ratio/region_mean; and generation (its index), num_completion_tokens (completion tokens
// sampled so far), rollout_s (seconds this step spent sampling and grading; 0 on the later steps
// of a generation), tokens_per_s, elapsed_s.
// --resume continues exactly: weights, optimizer, prompt position, and mid-generation the
// generation itself (its completions) from the checkpoint; sampling seeds follow from
// (training.seed, generation, position), so nothing else is random.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "grpo/grpo_config.h"
#include "parallel/process_group.h"

namespace align {

struct GrpoRunOptions {
  bool resume = false;
  // The data-parallel job (null: single process): each rank samples its share of every
  // generation's prompts and runs its share of every step's micro-batches; only rank 0 writes.
  std::shared_ptr<ProcessGroup> group;
  // Names the config in messages.
  std::string source = "the grpo config";
};

struct GrpoRunResult {
  int64_t steps = 0;
  int64_t generations = 0;     // sampled by this invocation
  int64_t tokens_sampled = 0;  // completion tokens sampled by this invocation
  double last_reward = 0;      // the last step's mean reward
  int64_t best_step = -1;      // with eval.queries: the step whose weights are the result
  double best_value = 0;
};

GrpoRunResult run_grpo(const GrpoConfig& config, const GrpoRunOptions& options);

}  // namespace align
