// Global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type=2):
//
//   total = || [ ||g_1||_2, ||g_2||_2, ... ] ||_2      over every parameter with a defined grad
//   g_i  <- g_i * min(max_norm / (total + 1e-6), 1)     (always multiplied, so no device sync)
//
// Each gradient's norm is accumulated in fp32 whatever the grad's dtype (torch rounds a bf16 grad's
// norm to bf16; here it stays fp32). A non-finite total is returned as is (and, as in torch, turns
// the grads into NaN when clipping): callers check it and skip the step.
#pragma once

#include <torch/types.h>

#include "train/named_tensors.h"

namespace align {

// Returns the total norm before clipping: a 0-d fp32 tensor on the first gradient's device (0 when
// no parameter has a gradient). max_norm <= 0 only measures; the gradients are left unchanged.
torch::Tensor clip_grad_norm(const NamedTensors& params, double max_norm);

}  // namespace align
