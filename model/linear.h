// The linear projections of a Phi3 layer: y = x W^T, no bias anywhere in Phi3. (The element-wise
// ops, RMSNorm and the SwiGLU gate, are fused kernels with references in kernels/.)
#pragma once

#include <torch/types.h>

namespace align {

// x [..., in], weight [out, in] -> [..., out].
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight);

}  // namespace align
