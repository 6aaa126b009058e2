// The reference element-wise and matrix ops of a Phi3 layer, in plain LibTorch with Hugging Face's
// exact dtype handling. Fused kernels swap in behind these signatures; each must match them.
#pragma once

#include <torch/types.h>

namespace align {

// x [..., C] -> [..., C] in x's dtype: normalise in fp32 (x * rsqrt(mean(x^2) + eps)), cast back
// to x's dtype, then multiply by weight [C] (in the weight's dtype, as Phi3RMSNorm does).
// On CUDA (fp32/bf16) this runs the fused kernel (model/kernels/rms_norm.cu), elsewhere the
// reference below; the kernel has no backward, so the reference also serves calls that need a
// gradient (grad mode on and x or weight requiring grad).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// y = x W^T: x [..., in], weight [out, in] -> [..., out] (no bias anywhere in Phi3).
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight);

// gate_up [..., 2I] (gate first, then up) -> up * silu(gate) [..., I].
torch::Tensor swiglu(const torch::Tensor& gate_up);

}  // namespace align
