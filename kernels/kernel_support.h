// What every kernel and op layer in kernels/ shares. Torch-free, so the .cu files include it too
// (Torch's tensor type is only named here, never defined).
//
// A fused op NAME is three functions in NAME_op.h:
//   NAME(...)            dispatch: the kernel when use_kernel() says so, the reference otherwise
//   NAME_reference(...)  plain LibTorch, any device and dtype, differentiable: what the kernel is
//                        tested against and what CPU runs
//   NAME_cuda(...)       the kernel behind its checks (throws without a GPU build)
#pragma once

#include <initializer_list>

namespace at {
class Tensor;
}

namespace align {
namespace kernels {

// The storage dtypes every kernel is compiled for.
enum class DType { F32, BF16 };

}  // namespace kernels

// True when this build carries the CUDA kernels (nvcc was found at configure time).
bool cuda_kernels_built();

// Whether a fused kernel serves a call on `tensors` (the floating-point operands): the first is on
// CUDA, the kernels are built, all share one dtype that is fp32 or bf16, and no gradient is wanted
// (grad mode is off or none requires grad: the kernels have no backward).
bool use_kernel(std::initializer_list<const at::Tensor*> tensors);

// The kernel dtype of `t` (fp32 or bf16); throws align::Error naming `op` for any other dtype.
kernels::DType kernel_dtype(const at::Tensor& t, const char* op);

}  // namespace align
