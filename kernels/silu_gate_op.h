// The thin Torch layer over the SwiGLU gate kernel (kernels/silu_gate.h): checks the tensor,
// picks the dtype, launches on the current stream; a plain LibTorch reference serves CPU tensors,
// builds without nvcc and calls that need a gradient.
#pragma once

#include <torch/types.h>

namespace align {

// gate_up [..., 2I] (gate first, then up) -> up * silu(gate) [..., I] in gate_up's dtype, rounded
// as LibTorch rounds it. Runs the fused kernel for CUDA fp32/bf16 tensors when no gradient is
// wanted, the CPU twin for CPU fp32 ones, the reference otherwise.
torch::Tensor silu_gate(const torch::Tensor& gate_up);

// Plain LibTorch, any device and dtype, differentiable: the same expression as model/ops.cc's
// swiglu, `chunk(2, -1)[1] * silu(chunk(2, -1)[0])`.
torch::Tensor silu_gate_reference(const torch::Tensor& gate_up);

// The CPU twin (kernels/elementwise_cpu.h): gate_up [..., 2I] fp32 on the CPU. Returns a new
// contiguous [..., I].
torch::Tensor silu_gate_cpu(const torch::Tensor& gate_up);

// The kernel. gate_up: [..., 2I] fp32 or bf16 on CUDA, last dim contiguous (rows may be strided,
// e.g. a column slice of a wider tensor). Returns a new contiguous [..., I]. Throws align::Error
// on anything else, or when built without nvcc.
torch::Tensor silu_gate_cuda(const torch::Tensor& gate_up);

}  // namespace align
