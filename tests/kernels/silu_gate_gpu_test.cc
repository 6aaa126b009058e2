// SwiGLU gate: the CPU reference against the model's swiglu expression and its bf16 rounding, and
// the CUDA kernel against the reference over awkward shapes, strided rows and both dtypes. GPU
// tests skip (with a message) when no GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/rms_norm_op.h"
#include "kernels/silu_gate_op.h"
#include "tests/gpu_test_util.h"

namespace align {
namespace {

using testing::close;

// model/ops.cc's swiglu, restated: gate first half, up second half.
torch::Tensor model_swiglu(const torch::Tensor& gate_up) {
  auto halves = gate_up.chunk(2, -1);
  return halves[1] * torch::silu(halves[0]);
}

#define REQUIRE_GPU() REQUIRE_GPU_WITH(cuda_kernels_built())

TEST(SiluGateReference, EqualsModelSwiglu) {
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    torch::Tensor gate_up = torch::randn({3, 5, 2 * 37}, torch::TensorOptions().dtype(dtype)) * 4;
    torch::Tensor ref = silu_gate_reference(gate_up);
    EXPECT_EQ(ref.sizes(), (std::vector<int64_t>{3, 5, 37}));
    EXPECT_TRUE(torch::equal(ref, model_swiglu(gate_up)));
    EXPECT_TRUE(torch::equal(silu_gate(gate_up), ref));  // on CPU the op is the reference
  }
  // Gate first: silu(0) = 0 zeroes the output whatever up holds.
  torch::Tensor gate_up = torch::cat({torch::zeros({2, 3}), torch::ones({2, 3})}, -1);
  EXPECT_TRUE(torch::equal(silu_gate(gate_up), torch::zeros({2, 3})));
}

// What LibTorch's `up * silu(gate)` does in bf16, which the kernel reproduces: silu in fp32 rounded
// to bf16, then the fp32 product of two bf16 values rounded to bf16 -- two roundings, not one.
TEST(SiluGateReference, Bf16RoundsAfterSiluAndAfterTheProduct) {
  torch::manual_seed(3);
  torch::Tensor gate_up = (torch::randn({64, 2 * 4096}) * 4).to(torch::kBFloat16);
  auto halves = gate_up.chunk(2, -1);
  torch::Tensor g = halves[0].to(torch::kFloat32), up = halves[1].to(torch::kFloat32);
  torch::Tensor silu_bf16 = torch::silu(g).to(torch::kBFloat16).to(torch::kFloat32);
  torch::Tensor twice = (up * silu_bf16).to(torch::kBFloat16);
  torch::Tensor once = (up * torch::silu(g)).to(torch::kBFloat16);
  torch::Tensor ref = silu_gate_reference(gate_up);
  EXPECT_TRUE(torch::equal(ref, twice));
  const int64_t differ = (once != ref).sum().item<int64_t>();
  EXPECT_GT(differ, 0) << "expected some elements where one rounding differs from two";
  // ... and they differ by one bf16 rounding step at most (2^-7 relative, one ulp).
  EXPECT_TRUE(close(once, ref, 1.0 / 128, 0.0));
}

TEST(SiluGateReference, IsDifferentiable) {
  torch::Tensor gate_up = torch::randn({4, 10}, torch::requires_grad());
  silu_gate(gate_up).sum().backward();
  EXPECT_TRUE(gate_up.grad().defined());
}

TEST(SiluGateKernel, MatchesReferenceOverShapesAndDtypes) {
  REQUIRE_GPU();
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    // The kernel rounds where LibTorch rounds, so the results are expected equal; the tolerance
    // covers one rounding step (an exp that differs in its last fp32 bit can flip one).
    const double rtol = dtype == torch::kFloat32 ? 1e-5 : 1.0 / 128;
    for (int64_t rows : {1, 19, 64}) {
      for (int64_t inter : {1, 7, 100, 8193, 17920}) {
        auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
        torch::Tensor gate_up = torch::randn({rows, 2 * inter}, opts) * 4;
        torch::Tensor got = silu_gate_cuda(gate_up);
        torch::Tensor want = silu_gate_reference(gate_up);
        EXPECT_TRUE(close(got, want, rtol, 1e-30))
            << c10::toString(dtype) << " rows " << rows << " I " << inter;
      }
    }
  }
}

TEST(SiluGateKernel, StridedAndBatchedInputs) {
  REQUIRE_GPU();
  torch::manual_seed(4);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    const double rtol = dtype == torch::kFloat32 ? 1e-5 : 1.0 / 128;
    auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
    // A column slice of a wider tensor: rows 2 * 45 + 6 elements apart.
    torch::Tensor sliced = torch::randn({19, 2 * 45 + 6}, opts).narrow(1, 3, 2 * 45);
    // Batched [B, T, 2I], and a transposed one whose last dim is not contiguous.
    torch::Tensor batched = torch::randn({2, 7, 2 * 33}, opts);
    torch::Tensor transposed = torch::randn({2 * 33, 5}, opts).t();
    for (const torch::Tensor& gate_up : {sliced, batched, transposed}) {
      torch::Tensor got = silu_gate_cuda(gate_up);
      EXPECT_TRUE(close(got, silu_gate_reference(gate_up), rtol, 1e-30)) << gate_up.sizes();
      EXPECT_TRUE(torch::equal(silu_gate(gate_up), got));  // the op takes the kernel on CUDA
    }
  }
}

TEST(SiluGateKernel, RejectsBadInputs) {
  REQUIRE_GPU();
  auto opts = torch::TensorOptions().device(torch::kCUDA);
  EXPECT_ANY_THROW(silu_gate_cuda(torch::randn({2, 7}, opts)));  // odd last dim
  EXPECT_ANY_THROW(silu_gate_cuda(torch::randn({2, 8}, opts.dtype(torch::kFloat16))));
  EXPECT_ANY_THROW(silu_gate_cuda(torch::ones({2, 8}, opts.dtype(torch::kInt32))));
  EXPECT_ANY_THROW(silu_gate_cuda(torch::randn({2, 8})));  // CPU
}

}  // namespace
}  // namespace align
