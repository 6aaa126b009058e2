// DPO-family losses over per-pair log-probabilities: small pure functions over tensors.
//
// With z = (log pi(c) - log ref(c)) - (log pi(r) - log ref(r)) per pair (docs/dpo.md;
// TRL's DPOTrainer.dpo_loss, where z is called `logits`):
//
//   sigmoid   -(1 - e) log sigmoid(beta z) - e log sigmoid(-beta z)
//             Rafailov et al. 2023 (arXiv 2305.18290) eq. 7; e > 0 is conservative DPO (cDPO,
//             Mitchell 2023) label smoothing.
//   ipo       (z - 1 / (2 beta))^2       Azar et al. 2023 (arXiv 2310.12036) eq. 17; the caller
//             passes log-probs averaged per completion token, as TRL does.
//   hinge     max(0, 1 - beta z)         SLiC (Zhao et al. 2023, arXiv 2305.10425).
//   robust    (-(1 - e) log sigmoid(beta z) + e log sigmoid(-beta z)) / (1 - 2 e)
//             Chowdhury et al. 2024 (arXiv 2403.00409) eq. 8, as TRL implements it; e < 0.5.
//
// Rewards (logged, no gradient): rewards/chosen = beta (log pi(c) - log ref(c)), likewise rejected.
#pragma once

#include <torch/types.h>

#include <string>

#include "common/enum_names.h"

namespace align {

enum class DpoLossType { kSigmoid, kIpo, kHinge, kRobust };

template <>
struct EnumNames<DpoLossType> {
  static constexpr std::pair<DpoLossType, const char*> table[] = {
      {DpoLossType::kSigmoid, "sigmoid"},
      {DpoLossType::kIpo, "ipo"},
      {DpoLossType::kHinge, "hinge"},
      {DpoLossType::kRobust, "robust"}};
};

struct DpoLossOptions {
  DpoLossType type = DpoLossType::kSigmoid;
  double beta = 0.1;
  double label_smoothing = 0.0;  // e: sigmoid (cDPO) and robust only; in [0, 0.5)
};

// Throws InputError naming the dpo.* field when an option is out of range.
void validate(const DpoLossOptions& options);

struct DpoLossOutput {
  torch::Tensor losses;            // [N] fp32, with autograd
  torch::Tensor chosen_rewards;    // [N] fp32, detached
  torch::Tensor rejected_rewards;  // [N] fp32, detached
};

// All inputs [N] (fp32). The reference log-probs carry no gradient.
DpoLossOutput dpo_loss(const DpoLossOptions& options, const torch::Tensor& policy_chosen,
                       const torch::Tensor& policy_rejected, const torch::Tensor& ref_chosen,
                       const torch::Tensor& ref_rejected);

// The objective of one micro-batch inside an optimizer step, normalised by the step's totals so
// that gradient accumulation equals the unaccumulated batch:
//
//   sum_i w_i loss_i / step_weight  +  nll_weight * sum_i -log pi(c_i) / step_chosen_tokens
//
// `weights` [N] (all ones without per-pair weights); step_weight = sum of w over every pair of the
// step, step_chosen_tokens = chosen completion tokens of the step (the NLL term is TRL's rpo_alpha
// term: the mean NLL per chosen token). `policy_chosen_sum` [N] are the summed chosen log-probs.
torch::Tensor dpo_step_objective(const torch::Tensor& losses, const torch::Tensor& weights,
                                 double step_weight, const torch::Tensor& policy_chosen_sum,
                                 double nll_weight, double step_chosen_tokens);

}  // namespace align
