// The thin Torch layer over the RMSNorm kernel: checks the tensors, picks the dtype, launches on
// the current stream. The plain LibTorch reference (model/ reference ops) is what CPU uses.
#pragma once

#include <torch/types.h>

namespace align {

// True when this build carries the CUDA kernels (nvcc was found at configure time).
bool cuda_kernels_built();

// x: [..., C] fp32 or bf16 on CUDA, last dim contiguous; weight: [C] same dtype and device.
// Returns a new contiguous tensor shaped like x. Throws align::Error on anything else.
torch::Tensor rms_norm_cuda(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace align
