#include "grpo/grpo_loss.h"

#include <ATen/ATen.h>

#include <string>

#include "common/error.h"

namespace align {

GroupAdvantages group_advantages(const torch::Tensor& rewards, int64_t G, ScaleRewards scale) {
  const torch::Tensor r = rewards.to(at::kFloat);
  const int64_t N = r.size(0);
  if (G < 1 || N % G != 0) {
    throw Error("group_advantages: " + std::to_string(N) + " rewards are not groups of " +
                std::to_string(G));
  }
  const torch::Tensor grouped = r.view({N / G, G});
  const torch::Tensor mean = grouped.mean(1, true).expand({N / G, G}).reshape({N});
  torch::Tensor std;
  if (scale == ScaleRewards::kBatch) {
    std = N > 1 ? r.std(/*unbiased=*/true).expand({N}) : at::zeros({N}, r.options());
  } else {
    std = G > 1 ? grouped.std(1, /*unbiased=*/true, true).expand({N / G, G}).reshape({N})
                : at::zeros({N}, r.options());
  }
  GroupAdvantages out;
  out.advantages = r - mean;
  if (scale != ScaleRewards::kNone) out.advantages = out.advantages / (std + 1e-4);
  out.std = std.contiguous();
  out.zero_std = at::isclose(std, at::zeros_like(std));
  return out;
}

void validate(const GrpoLossOptions& o) {
  if (!(o.beta >= 0)) throw InputError("grpo.beta: must be >= 0");
  if (!(o.epsilon >= 0 && o.epsilon < 1)) throw InputError("grpo.epsilon: must be in [0, 1)");
  if (!(o.epsilon_high >= 0)) throw InputError("grpo.epsilon_high: must be >= 0");
  if (!(o.top_entropy_quantile > 0 && o.top_entropy_quantile <= 1)) {
    throw InputError("grpo.top_entropy_quantile: must be in (0, 1]");
  }
}

namespace {

// TRL's get_high_entropy_mask: tokens whose entropy is at least the (1 - rho) quantile of the
// masked entropies (torch.quantile's linear interpolation).
torch::Tensor high_entropy_mask(const torch::Tensor& entropies, const torch::Tensor& mask,
                                double rho) {
  const torch::Tensor on = mask > 0;
  const torch::Tensor local = entropies.masked_select(on).to(at::kFloat);
  if (local.numel() == 0) return at::zeros_like(on);
  const torch::Tensor threshold = at::quantile(local, 1 - rho);
  return (entropies * mask >= threshold).logical_and(on);
}

}  // namespace

GrpoLossOutput grpo_loss(const GrpoLossOptions& o, const GrpoLossInputs& in) {
  const torch::Tensor logps = in.logps.to(at::kFloat);
  const torch::Tensor mask = in.mask.to(at::kFloat);
  const torch::Tensor old =
      in.old_logps.defined() ? in.old_logps.to(at::kFloat).detach() : logps.detach();
  const torch::Tensor A = in.advantages.to(at::kFloat).detach().unsqueeze(1);  // [B, 1]
  const torch::Tensor log_ratio = logps - old;
  torch::Tensor log_w = log_ratio;  // [B, T]
  if (o.level == ImportanceSamplingLevel::kSequence) {
    log_w = ((log_ratio * mask).sum(-1) / mask.sum(-1).clamp_min(1.0)).unsqueeze(1);  // [B, 1]
  }
  const torch::Tensor w = at::exp(log_w);
  const torch::Tensor w_clipped = at::clamp(w, 1 - o.epsilon, 1 + o.epsilon_high);
  torch::Tensor loss = -at::min(w * A, w_clipped * A);
  if (o.top_entropy_quantile < 1) {
    loss = loss * high_entropy_mask(in.entropies.detach(), mask, o.top_entropy_quantile);
  }
  GrpoLossOutput out;
  if (o.beta != 0) {
    const torch::Tensor d = in.ref_logps.to(at::kFloat).detach() - logps;
    torch::Tensor kl = at::exp(d) - d - 1;
    if (o.use_bias_correction_kl) kl = kl * w;
    loss = loss + o.beta * kl;
    out.kl = kl.detach();
  }
  out.per_token_loss = loss.expand_as(mask);
  out.ratio = w.detach();
  out.low_clipped = (out.ratio < 1 - o.epsilon).logical_and(A < 0);
  out.high_clipped = (out.ratio > 1 + o.epsilon_high).logical_and(A > 0);
  return out;
}

torch::Tensor grpo_objective(GrpoLossType type, const torch::Tensor& per_token_loss,
                             const torch::Tensor& mask, const GrpoNormalizer& n) {
  const torch::Tensor m = mask.to(at::kFloat);
  const torch::Tensor masked = per_token_loss * m;
  const double M = static_cast<double>(n.micro_batches);
  const double B = static_cast<double>(per_token_loss.size(0));
  switch (type) {
    case GrpoLossType::kGrpo:
      return (masked.sum(-1) / m.sum(-1).clamp_min(1.0)).mean() / M;
    case GrpoLossType::kBnpo:
      return masked.sum() / m.sum().clamp_min(1.0) / M;
    case GrpoLossType::kDrGrpo:
      return masked.sum() / (B * static_cast<double>(n.max_completion_length)) / M;
    case GrpoLossType::kDapo:
      return masked.sum() / std::max(n.step_tokens, 1.0);
  }
  throw Error("grpo_objective: unknown loss type");
}

std::pair<double, double> masked_sum_count(const torch::Tensor& value, const torch::Tensor& mask) {
  const torch::Tensor v = value.to(at::kDouble);
  if (v.size(1) == 1) return {v.sum().item<double>(), static_cast<double>(v.size(0))};
  const torch::Tensor m = mask.to(at::kDouble);
  return {(v * m).sum().item<double>(), m.sum().item<double>()};
}

}  // namespace align
