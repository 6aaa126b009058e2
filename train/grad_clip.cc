#include "train/grad_clip.h"

#include <vector>

namespace align {

torch::Tensor clip_grad_norm(const NamedTensors& params, double max_norm) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> grads;
  for (const auto& [name, param] : params) {
    if (param.grad().defined()) grads.push_back(param.grad());
  }
  if (grads.empty()) return torch::zeros({}, torch::kFloat32);
  const torch::Device device = grads.front().device();
  std::vector<torch::Tensor> norms;
  for (const auto& g : grads) {
    norms.push_back(
        torch::linalg_vector_norm(g, 2, c10::nullopt, false, torch::kFloat32).to(device));
  }
  const torch::Tensor total = torch::linalg_vector_norm(torch::stack(norms), 2);
  if (max_norm > 0) {
    // torch writes max_norm / (total + 1e-6), which Python evaluates as reciprocal() * max_norm.
    const torch::Tensor coef =
        torch::clamp((total + 1e-6).reciprocal() * max_norm, c10::nullopt, 1.0);
    for (auto& g : grads)
      g.mul_(coef.to(g.device()));
  }
  return total;
}

}  // namespace align
