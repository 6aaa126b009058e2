// Helpers for the GPU tests that compare CUDA kernels with their CPU references.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/kernel_support.h"

// GTEST_SKIP only leaves the function it is written in, hence a macro. `built` says whether this
// build carries the kernels (nvcc was found), e.g. cuda_kernels_built().
#define REQUIRE_GPU_WITH(built)                                                           \
  do {                                                                                    \
    if (!(built)) GTEST_SKIP() << "built without nvcc: no CUDA kernels";                  \
    if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped"; \
  } while (0)

namespace align::testing {

// Elements outside |got - want| <= rtol * |want| + atol, with the largest error in the message.
inline ::testing::AssertionResult close(const torch::Tensor& got, const torch::Tensor& want,
                                        double rtol, double atol) {
  if (got.sizes() != want.sizes()) {
    return ::testing::AssertionFailure() << "shape " << got.sizes() << " vs " << want.sizes();
  }
  torch::Tensor g = got.to(torch::kFloat64).cpu(), w = want.to(torch::kFloat64).cpu();
  torch::Tensor err = (g - w).abs();
  const int64_t bad = (err > w.abs() * rtol + atol).sum().item<int64_t>();
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << bad << " of " << g.numel() << " elements off, max abs err " << err.max().item<double>();
}

}  // namespace align::testing
