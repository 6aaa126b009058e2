// What every kernel and op layer in kernels/ shares. Torch-free, so the .cu files include it too
// (Torch's tensor type is only named here, never defined).
//
// A fused op NAME is three functions in NAME_op.h:
//   NAME(...)            dispatch: the kernel when use_kernel() says so, a CPU twin (NAME_cpu,
//                        where one exists) when use_cpu_kernel() does, the reference otherwise
//   NAME_reference(...)  plain LibTorch, any device and dtype, differentiable: what the kernels
//                        are tested against and what training runs
//   NAME_cuda(...)       the kernel behind its checks (throws without a GPU build)
#pragma once

#include <cstdint>
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

// Whether a CPU twin (elementwise_cpu.h) serves a call: every tensor is on the CPU in fp32 and grad
// mode is off (inference: the engine, scoring; a training forward keeps the references throughout,
// whichever of its tensors want gradients). bf16 keeps the references, which round each
// intermediate as LibTorch (and so transformers) does.
bool use_cpu_kernel(std::initializer_list<const at::Tensor*> tensors);

// While one is alive on this thread, use_kernel and use_cpu_kernel answer false: every op runs its
// reference. For a forward without gradients that must equal its recompute with gradients
// (model/activation_checkpoint.cc), where a kernel would round differently from the reference.
class ReferenceOpsScope {
 public:
  ReferenceOpsScope();
  ~ReferenceOpsScope();
  ReferenceOpsScope(const ReferenceOpsScope&) = delete;
  ReferenceOpsScope& operator=(const ReferenceOpsScope&) = delete;

 private:
  bool previous_;
};

// Rows per task when a CPU twin splits rows of `cols` values over threads: about 16k values, so a
// small call (one decode row) runs on the calling thread without waking the others.
inline int64_t cpu_rows_per_task(int64_t cols) {
  return cols >= 16384 ? 1 : 16384 / (cols > 0 ? cols : 1);
}

// How many threads an at::parallel_for in kernels/ spreads `items` work items over: at most
// at::get_num_threads() and `items`. at::parallel_for is a header template over
// `#pragma omp parallel`, so code built without OpenMP runs it on the calling thread alone and
// this answers 1 (kernels/ build with -fopenmp; tests/kernels hold it to that).
int64_t cpu_parallel_width(int64_t items);

// The kernel dtype of `t` (fp32 or bf16); throws align::Error naming `op` for any other dtype.
kernels::DType kernel_dtype(const at::Tensor& t, const char* op);

}  // namespace align
