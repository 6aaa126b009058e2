#include "model/ops.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include "model/kernels/rms_norm_op.h"

namespace align {

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  // The fused kernel computes exactly this; it serves CUDA tensors of its dtypes. It has no
  // backward: when a gradient is wanted (training) the differentiable reference runs.
  const bool kernel_dtype = x.scalar_type() == at::kFloat || x.scalar_type() == at::kBFloat16;
  const bool wants_grad =
      c10::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad());
  if (x.is_cuda() && cuda_kernels_built() && kernel_dtype && !wants_grad &&
      weight.scalar_type() == x.scalar_type()) {
    return rms_norm_cuda(x, weight, eps);
  }
  return rms_norm_reference(x, weight, eps);
}

torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  auto h = x.to(at::kFloat);
  auto variance = h.pow(2).mean(-1, /*keepdim=*/true);
  h = h * at::rsqrt(variance + eps);
  return weight * h.to(x.scalar_type());
}

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight) {
  return at::linear(x, weight);
}

torch::Tensor swiglu(const torch::Tensor& gate_up) {
  auto halves = gate_up.chunk(2, -1);
  return halves[1] * at::silu(halves[0]);
}

}  // namespace align
