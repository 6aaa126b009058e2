// The thin Torch layer over the residual-add + RMSNorm kernel (kernels/residual_rms_norm.h):
// checks the tensors, picks the dtype, launches on the current stream; a plain LibTorch reference
// serves CPU tensors, builds without nvcc and calls that need a gradient.
#pragma once

#include <torch/types.h>

#include <utility>

namespace align {

// x, residual: [..., C] in the model dtype; weight: [C]. Returns (h, out), both shaped like x:
//   h   = x + residual                 (in the model dtype, the Phi3 layer's `h + attn_out`)
//   out = rms_norm(h, weight, eps)     (Hugging Face Phi3RMSNorm: fp32 normalise, cast, * weight)
// Runs the fused kernel for CUDA fp32/bf16 tensors of one dtype when no gradient is wanted, the
// CPU twin for CPU fp32 ones, the reference otherwise.
std::pair<torch::Tensor, torch::Tensor> residual_rms_norm(const torch::Tensor& x,
                                                          const torch::Tensor& residual,
                                                          const torch::Tensor& weight, double eps);

// Plain LibTorch, any device and dtype, differentiable: `h = x + residual`, then exactly
// model/ops.cc's rms_norm_reference on h.
std::pair<torch::Tensor, torch::Tensor> residual_rms_norm_reference(const torch::Tensor& x,
                                                                    const torch::Tensor& residual,
                                                                    const torch::Tensor& weight,
                                                                    double eps);

// The CPU twin (kernels/elementwise_cpu.h): x, residual [..., C] of one shape, fp32 on the CPU;
// weight [C] fp32. Returns new contiguous (h, out).
std::pair<torch::Tensor, torch::Tensor> residual_rms_norm_cpu(const torch::Tensor& x,
                                                              const torch::Tensor& residual,
                                                              const torch::Tensor& weight,
                                                              double eps);

// The kernel. x, residual: [..., C] of one shape, fp32 or bf16 on one CUDA device, last dim
// contiguous (rows may be strided); weight: [C], same dtype and device. Returns new contiguous
// (h, out). Throws align::Error on anything else, or when built without nvcc.
std::pair<torch::Tensor, torch::Tensor> residual_rms_norm_cuda(const torch::Tensor& x,
                                                               const torch::Tensor& residual,
                                                               const torch::Tensor& weight,
                                                               double eps);

}  // namespace align
