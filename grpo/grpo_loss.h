// GRPO-family losses over per-token log-probabilities: small pure functions over tensors, with
// TRL's GRPOConfig names and meanings (trl 1.16, GRPOTrainer._compute_loss; docs/grpo.md).
//
// A generation is P prompts x G completions (num_generations), completion i of prompt p at row
// p * G + g. Rewards r_i are the weighted sum of the reward functions (grpo/rewards.h).
//
//   advantage   A_i = r_i - mean_group(r)                          scale_rewards none (Dr. GRPO,
//                                                                  Liu et al. 2025, 2503.20783)
//               A_i = (r_i - mean_group(r)) / (std_group(r) + 1e-4)   group (DeepSeekMath, Shao
//                                                                  et al. 2024, 2402.03300 eq. 4)
//               A_i = (r_i - mean_group(r)) / (std_batch(r) + 1e-4)   batch (PPO Lite, Liu et
//                                                                  al. 2025, 2508.08221)
//               std with Bessel's correction (n - 1), as TRL's nanstd.
//
// Per token t of completion i (mask m_it), l_it = log pi(o_it) - log pi_old(o_it):
//   ratio       w_it = exp(l_it)                                   importance_sampling_level token
//               w_i  = exp(sum_t m_it l_it / max(1, sum_t m_it))   sequence (GSPO, Zheng et al.
//                                                                  2025, 2507.18071)
//   policy      -min(w A_i, clip(w, 1 - epsilon, 1 + epsilon_high) A_i)   PPO's clipped
//                                                                  surrogate (Schulman 2017);
//                                                                  epsilon_high > epsilon is
//                                                                  DAPO's clip-higher (2503.14476)
//               x [H_it >= q] with top_entropy_quantile rho < 1: q the (1 - rho) quantile of the
//                 entropies H of the micro-batch's tokens (Wang et al. 2025, 2506.01939)
//   kl          k_it = exp(ref_it - logp_it) - (ref_it - logp_it) - 1   the k3 estimator
//                 (Schulman 2020; DeepSeekMath eq. 4), x w when use_bias_correction_kl
//                 (DeepSeek-V3.2, 2512.02556: the unbiased reverse-KL gradient off policy)
//   per token   L_it = policy_it + beta k_it
//
// Pi_old is the policy that sampled the completions: with num_iterations 1 it is the policy
// itself (l = logp - logp.detach(): w = 1 with the policy gradient; TRL's shortcut).
// Clip metrics (TRL's): low = w < 1 - epsilon and A < 0; high = w > 1 + epsilon_high and A > 0;
// region = low or high.
//
// Aggregation (loss_type) of a micro-batch of B completions, one of M in the optimizer step
// (grpo_objective), so that summing the micro-batches' gradients over the step (and the ranks)
// is TRL's gradient with per_device_train_batch_size B x ranks x gradient_accumulation_steps = the
// step's completions:
//   grpo     (1/M) (1/B) sum_i (sum_t m L / max(1, sum_t m))    DeepSeekMath: per-sequence mean
//   bnpo     (1/M) sum m L / max(1, sum m)                      token mean of the micro-batch
//   dr_grpo  (1/M) sum m L / (B max_completion_length)          Dr. GRPO: a constant
//   dapo     sum m L / max(1, tokens of the whole step)         DAPO: token mean of the step
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <utility>

#include "common/enum_names.h"

namespace align {

enum class GrpoLossType { kGrpo, kBnpo, kDrGrpo, kDapo };
enum class ScaleRewards { kGroup, kBatch, kNone };
enum class ImportanceSamplingLevel { kToken, kSequence };

template <>
struct EnumNames<GrpoLossType> {
  static constexpr std::pair<GrpoLossType, const char*> table[] = {
      {GrpoLossType::kGrpo, "grpo"},
      {GrpoLossType::kBnpo, "bnpo"},
      {GrpoLossType::kDrGrpo, "dr_grpo"},
      {GrpoLossType::kDapo, "dapo"}};
};

template <>
struct EnumNames<ScaleRewards> {
  static constexpr std::pair<ScaleRewards, const char*> table[] = {{ScaleRewards::kGroup, "group"},
                                                                   {ScaleRewards::kBatch, "batch"},
                                                                   {ScaleRewards::kNone, "none"}};
};

template <>
struct EnumNames<ImportanceSamplingLevel> {
  static constexpr std::pair<ImportanceSamplingLevel, const char*> table[] = {
      {ImportanceSamplingLevel::kToken, "token"}, {ImportanceSamplingLevel::kSequence, "sequence"}};
};

struct GroupAdvantages {
  torch::Tensor advantages;  // [N] fp32
  torch::Tensor std;         // [N] fp32: the std each advantage was (or, with none, would be)
                             // scaled by
  torch::Tensor zero_std;    // [N] bool: that std is 0 (TRL's frac_reward_zero_std counts them)
};

// rewards [N = P x G] fp32, group-major (the G completions of a prompt are consecutive).
GroupAdvantages group_advantages(const torch::Tensor& rewards, int64_t num_generations,
                                 ScaleRewards scale);

struct GrpoLossOptions {
  double beta = 0.0;
  double epsilon = 0.2;       // epsilon_low
  double epsilon_high = 0.2;  // resolved: TRL's None means epsilon
  ImportanceSamplingLevel level = ImportanceSamplingLevel::kToken;
  bool use_bias_correction_kl = true;
  double top_entropy_quantile = 1.0;  // rho in (0, 1]; 1: every token
};

// Throws InputError naming the grpo.* field when an option is out of range.
void validate(const GrpoLossOptions& options);

// One micro-batch of B completions padded to T tokens.
struct GrpoLossInputs {
  torch::Tensor logps;       // [B, T] fp32 policy log-probs of the completion tokens (autograd)
  torch::Tensor old_logps;   // [B, T] fp32 pi_old; undefined: logps.detach() (num_iterations 1)
  torch::Tensor ref_logps;   // [B, T] fp32 reference; needed when beta != 0
  torch::Tensor entropies;   // [B, T] fp32; needed when top_entropy_quantile < 1
  torch::Tensor advantages;  // [B] fp32
  torch::Tensor mask;        // [B, T] fp32: 1 on completion tokens the loss counts
};

struct GrpoLossOutput {
  torch::Tensor per_token_loss;  // [B, T] fp32 L (autograd); a sequence-level value is repeated
                                 // on every token of its row
  torch::Tensor ratio;           // [B, T] or [B, 1] fp32 w, detached
  torch::Tensor kl;              // [B, T] fp32 k (x w with bias correction), detached; undefined
                                 // when beta == 0
  torch::Tensor low_clipped;     // [B, T] or [B, 1] bool
  torch::Tensor high_clipped;    // [B, T] or [B, 1] bool
};

GrpoLossOutput grpo_loss(const GrpoLossOptions& options, const GrpoLossInputs& inputs);

// How a micro-batch's summed loss is normalised (the table above).
struct GrpoNormalizer {
  int64_t micro_batches = 1;          // M: micro-batches in the optimizer step, over all ranks
  double step_tokens = 1;             // dapo: mask tokens of the whole step
  int64_t max_completion_length = 1;  // dr_grpo: sampling.max_new_tokens
};

// The micro-batch's share of the step's objective (a scalar with autograd).
torch::Tensor grpo_objective(GrpoLossType type, const torch::Tensor& per_token_loss,
                             const torch::Tensor& mask, const GrpoNormalizer& normalizer);

// TRL's masked means of a metric over a micro-batch: sum(x m) and sum(m) for a [B, T] value, or
// sum(x) and B for a sequence-level [B, 1] one. Summed over micro-batches and ranks, their
// quotient is the step's mean.
std::pair<double, double> masked_sum_count(const torch::Tensor& value, const torch::Tensor& mask);

}  // namespace align
