#include "kernels/kernel_support.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>

#include <atomic>
#include <string>

#include "common/error.h"

namespace align {

bool cuda_kernels_built() {
#ifdef ALIGN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

namespace {
thread_local bool references_only = false;
}  // namespace

ReferenceOpsScope::ReferenceOpsScope() : previous_(references_only) {
  references_only = true;
}
ReferenceOpsScope::~ReferenceOpsScope() {
  references_only = previous_;
}

bool use_kernel(std::initializer_list<const at::Tensor*> tensors) {
  if (tensors.size() == 0 || references_only || !cuda_kernels_built()) return false;
  const at::Tensor& first = **tensors.begin();
  if (!first.is_cuda()) return false;
  const auto dtype = first.scalar_type();
  if (dtype != at::kFloat && dtype != at::kBFloat16) return false;
  const bool grad_mode = c10::GradMode::is_enabled();
  for (const at::Tensor* t : tensors) {
    if (t->scalar_type() != dtype) return false;
    if (grad_mode && t->requires_grad()) return false;
  }
  return true;
}

bool use_cpu_kernel(std::initializer_list<const at::Tensor*> tensors) {
  if (tensors.size() == 0 || references_only || c10::GradMode::is_enabled()) return false;
  for (const at::Tensor* t : tensors) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat) return false;
  }
  return true;
}

int64_t cpu_parallel_width(int64_t items) {
  std::atomic<int64_t> calls{0};
  at::parallel_for(0, items, 1, [&](int64_t, int64_t) { calls.fetch_add(1); });
  return calls.load();
}

kernels::DType kernel_dtype(const at::Tensor& t, const char* op) {
  if (t.scalar_type() == at::kFloat) return kernels::DType::F32;
  if (t.scalar_type() == at::kBFloat16) return kernels::DType::BF16;
  throw Error(std::string(op) + ": expected fp32 or bf16, got " +
              std::string(c10::toString(t.scalar_type())));
}

}  // namespace align
