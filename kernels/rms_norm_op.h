// RMSNorm, the op layer over kernels/rms_norm.cu: dispatch, reference and kernel (see
// kernel_support.h for the pattern).
#pragma once

#include <torch/types.h>

namespace align {

// x [..., C] -> [..., C] in x's dtype: normalise in fp32 (x * rsqrt(mean(x^2) + eps)), cast back
// to x's dtype, then multiply by weight [C] (in the weight's dtype, as Phi3RMSNorm does). The
// kernel serves CUDA fp32/bf16 calls that want no gradient, the CPU twin CPU fp32 ones; the
// reference everything else.
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);
torch::Tensor rms_norm_reference(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// The CPU twin (kernels/elementwise_cpu.h): x [..., C] fp32 on the CPU, last dim any stride;
// weight [C] fp32. rms_norm takes it for calls that want no gradient.
torch::Tensor rms_norm_cpu(const torch::Tensor& x, const torch::Tensor& weight, double eps);

// The kernel. x: [..., C] fp32 or bf16 on CUDA, last dim contiguous; weight: [C] same dtype and
// device. Returns a new contiguous tensor shaped like x. Throws align::Error on anything else.
torch::Tensor rms_norm_cuda(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace align
