#include "dpo/dpo_loss.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace align {

void validate(const DpoLossOptions& o) {
  if (!(o.beta > 0)) throw InputError("dpo.beta: must be positive");
  if (!(o.label_smoothing >= 0 && o.label_smoothing < 0.5)) {
    throw InputError("dpo.label_smoothing: must be in [0, 0.5)");
  }
  if (o.label_smoothing > 0 && o.type != DpoLossType::kSigmoid && o.type != DpoLossType::kRobust) {
    throw InputError("dpo.label_smoothing: only the sigmoid and robust losses use it");
  }
}

DpoLossOutput dpo_loss(const DpoLossOptions& o, const torch::Tensor& policy_chosen,
                       const torch::Tensor& policy_rejected, const torch::Tensor& ref_chosen,
                       const torch::Tensor& ref_rejected) {
  const torch::Tensor pc = policy_chosen.to(at::kFloat), pr = policy_rejected.to(at::kFloat);
  const torch::Tensor rc = ref_chosen.to(at::kFloat).detach();
  const torch::Tensor rr = ref_rejected.to(at::kFloat).detach();
  const torch::Tensor z = (pc - rc) - (pr - rr);  // [N]
  const double b = o.beta, e = o.label_smoothing;
  DpoLossOutput out;
  switch (o.type) {
    case DpoLossType::kSigmoid:
      out.losses = -(1 - e) * at::log_sigmoid(b * z) - e * at::log_sigmoid(-b * z);
      break;
    case DpoLossType::kIpo:
      out.losses = (z - 1 / (2 * b)).pow(2);
      break;
    case DpoLossType::kHinge:
      out.losses = at::relu(1 - b * z);
      break;
    case DpoLossType::kRobust:
      out.losses = (-(1 - e) * at::log_sigmoid(b * z) + e * at::log_sigmoid(-b * z)) / (1 - 2 * e);
      break;
  }
  out.chosen_rewards = (b * (pc - rc)).detach();
  out.rejected_rewards = (b * (pr - rr)).detach();
  return out;
}

torch::Tensor dpo_step_objective(const torch::Tensor& losses, const torch::Tensor& weights,
                                 double step_weight, const torch::Tensor& policy_chosen_sum,
                                 double nll_weight, double step_chosen_tokens) {
  torch::Tensor total = (losses * weights.to(losses.device(), at::kFloat)).sum() / step_weight;
  if (nll_weight != 0) {
    total = total + nll_weight * (-policy_chosen_sum.to(at::kFloat).sum()) / step_chosen_tokens;
  }
  return total;
}

}  // namespace align
