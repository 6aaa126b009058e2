// Residual add + RMSNorm: the CPU reference against the model's unfused ops (x + residual, then
// Phi3RMSNorm), and the CUDA kernel against the reference over awkward shapes, strided rows and
// both dtypes. GPU tests skip (with a message) when no GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/residual_rms_norm_op.h"
#include "kernels/rms_norm_op.h"
#include "tests/gpu_test_util.h"

namespace align {
namespace {

using testing::close;

// model/ops.cc's rms_norm_reference (Hugging Face Phi3RMSNorm), restated: fp32 normalise, cast to
// x's dtype, multiply by the weight.
torch::Tensor model_rms_norm(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  torch::Tensor h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, true) + eps);
  return w * h.to(x.scalar_type());
}

#define REQUIRE_GPU() REQUIRE_GPU_WITH(cuda_kernels_built())

TEST(ResidualRmsNormReference, EqualsAddThenModelRmsNorm) {
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    auto opts = torch::TensorOptions().dtype(dtype);
    torch::Tensor x = torch::randn({3, 5, 37}, opts) * 2;
    torch::Tensor res = torch::randn({3, 5, 37}, opts);
    torch::Tensor w = torch::randn({37}, opts);
    auto [h, out] = residual_rms_norm_reference(x, res, w, 1e-5);
    torch::Tensor want_h = x + res;
    EXPECT_EQ(h.scalar_type(), dtype);
    EXPECT_TRUE(torch::equal(h, want_h));
    EXPECT_TRUE(torch::equal(out, model_rms_norm(want_h, w, 1e-5)));
    // On CPU the op is the reference.
    auto [h2, out2] = residual_rms_norm(x, res, w, 1e-5);
    EXPECT_TRUE(torch::equal(h2, h));
    EXPECT_TRUE(torch::equal(out2, out));
  }
}

TEST(ResidualRmsNormReference, NormalisesTheRoundedSum) {
  // In bf16 the sum is rounded before it is normalised: 256 + 1 = 256 (ties to even).
  auto opts = torch::TensorOptions().dtype(torch::kBFloat16);
  torch::Tensor x = torch::tensor({256.0, 256.0}, opts).view({1, 2});
  torch::Tensor res = torch::tensor({1.0, -1.0}, opts).view({1, 2});
  torch::Tensor w = torch::tensor({1.0, 2.0}, opts);
  auto [h, out] = residual_rms_norm_reference(x, res, w, 1e-5);
  torch::Tensor want_h = torch::tensor({256.0, 255.0}, opts).view({1, 2});
  EXPECT_TRUE(torch::equal(h, want_h));
  EXPECT_TRUE(torch::equal(out, model_rms_norm(want_h, w, 1e-5)));
}

TEST(ResidualRmsNormReference, IsDifferentiable) {
  torch::manual_seed(1);
  torch::Tensor x = torch::randn({4, 9}, torch::requires_grad());
  torch::Tensor res = torch::randn({4, 9});
  torch::Tensor w = torch::randn({9}, torch::requires_grad());
  auto [h, out] = residual_rms_norm(x, res, w, 1e-5);
  (out.sum() + h.sum()).backward();
  EXPECT_TRUE(x.grad().defined());
  EXPECT_TRUE(w.grad().defined());
}

TEST(ResidualRmsNormKernel, MatchesReferenceOverShapesAndDtypes) {
  REQUIRE_GPU();
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    // h: the same single rounding of the same fp32 sum, so exact. out: fp32, a different summation
    // order only; bf16, the sum order can flip the rounding of the normalised value (one bf16
    // ulp, 2^-7 relative) and the product then rounds once more.
    const double rtol = dtype == torch::kFloat32 ? 1e-5 : 1.0 / 64;
    for (int64_t rows : {1, 19, 64}) {
      for (int64_t cols : {1, 7, 100, 3072, 5120, 5121}) {
        auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
        torch::Tensor x = torch::randn({rows, cols}, opts) * 3;
        torch::Tensor res = torch::randn({rows, cols}, opts);
        torch::Tensor w = torch::randn({cols}, opts);
        auto [h, out] = residual_rms_norm_cuda(x, res, w, 1e-5);
        auto [want_h, want_out] = residual_rms_norm_reference(x, res, w, 1e-5);
        EXPECT_TRUE(torch::equal(h, want_h)) << c10::toString(dtype) << " " << rows << "x" << cols;
        EXPECT_TRUE(close(out, want_out, rtol, 1e-6))
            << c10::toString(dtype) << " " << rows << "x" << cols;
      }
    }
  }
}

TEST(ResidualRmsNormKernel, StridedAndBatchedInputs) {
  REQUIRE_GPU();
  torch::manual_seed(2);
  auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  torch::Tensor wide = torch::randn({3, 5, 200}, opts);
  torch::Tensor x = wide.narrow(2, 10, 129);  // rows 200 elements apart
  torch::Tensor res = torch::randn({129, 5, 3}, opts).permute({2, 1, 0});  // last dim strided
  torch::Tensor w = torch::randn({129}, opts);
  auto [h, out] = residual_rms_norm_cuda(x, res, w, 1e-6);
  auto [want_h, want_out] = residual_rms_norm_reference(x, res, w, 1e-6);
  EXPECT_EQ(out.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(h, want_h));
  EXPECT_TRUE(close(out, want_out, 1.0 / 64, 1e-6));
  // The dispatching op takes the kernel for CUDA tensors.
  auto [h2, out2] = residual_rms_norm(x, res, w, 1e-6);
  EXPECT_TRUE(torch::equal(h2, h));
  EXPECT_TRUE(torch::equal(out2, out));
}

TEST(ResidualRmsNormKernel, RejectsMismatchedInputs) {
  REQUIRE_GPU();
  auto x = torch::randn({2, 8}, torch::TensorOptions().device(torch::kCUDA));
  auto w = torch::ones({8}, x.options());
  EXPECT_ANY_THROW(residual_rms_norm_cuda(x, torch::randn({2, 7}, x.options()), w, 1e-5));
  EXPECT_ANY_THROW(residual_rms_norm_cuda(x, x, torch::ones({7}, x.options()), 1e-5));
  EXPECT_ANY_THROW(residual_rms_norm_cuda(x, x.to(torch::kBFloat16), w, 1e-5));
  EXPECT_ANY_THROW(residual_rms_norm_cuda(x, x.cpu(), w, 1e-5));
  EXPECT_ANY_THROW(residual_rms_norm_cuda(x.cpu(), x.cpu(), w.cpu(), 1e-5));
}

}  // namespace
}  // namespace align
