// GPU test: the RMSNorm CUDA kernel against the plain LibTorch fp32 reference, over awkward shapes,
// strided rows and both dtypes. Skipped (with a message) when no GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/rms_norm_op.h"
#include "tests/gpu_test_util.h"

namespace align {
namespace {

// Hugging Face Phi3RMSNorm, computed here independently: fp32 normalise, cast, multiply by weight.
torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, double eps) {
  torch::Tensor h = x.to(torch::kFloat32);
  h = h * torch::rsqrt(h.pow(2).mean(-1, true) + eps);
  return w * h.to(x.scalar_type());
}

#define REQUIRE_GPU() REQUIRE_GPU_WITH(cuda_kernels_built())

TEST(RmsNormKernel, MatchesReferenceOverShapesAndDtypes) {
  REQUIRE_GPU();
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    // fp32: a different summation order only; bf16: at most one rounding step of the output.
    const double tol = dtype == torch::kFloat32 ? 1e-5 : 1e-2;
    for (int64_t rows : {1, 19, 64}) {
      for (int64_t cols : {1, 7, 64, 100, 3072, 5120}) {
        auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
        torch::Tensor x = torch::randn({rows, cols}, opts) * 3;
        torch::Tensor w = torch::randn({cols}, opts);
        torch::Tensor got = rms_norm_cuda(x, w, 1e-5);
        torch::Tensor want = reference(x, w, 1e-5);
        double err =
            (got.to(torch::kFloat32) - want.to(torch::kFloat32)).abs().max().item<double>();
        double scale = want.to(torch::kFloat32).abs().max().item<double>() + 1e-6;
        EXPECT_LE(err / scale, tol) << c10::toString(dtype) << " rows " << rows << " cols " << cols;
      }
    }
  }
}

TEST(RmsNormKernel, StridedRowsAndBatchedShapes) {
  REQUIRE_GPU();
  torch::manual_seed(1);
  auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  torch::Tensor wide = torch::randn({3, 5, 200}, opts);
  torch::Tensor x = wide.narrow(2, 10, 128);  // rows 200 elements apart
  torch::Tensor w = torch::randn({128}, opts);
  torch::Tensor got = rms_norm_cuda(x, w, 1e-6);
  EXPECT_EQ(got.sizes(), x.sizes());
  EXPECT_TRUE(torch::allclose(got.to(torch::kFloat32), reference(x, w, 1e-6).to(torch::kFloat32),
                              1e-2, 1e-2));
}

TEST(RmsNormKernel, RejectsMismatchedInputs) {
  REQUIRE_GPU();
  auto x = torch::randn({2, 8}, torch::TensorOptions().device(torch::kCUDA));
  EXPECT_ANY_THROW(rms_norm_cuda(x, torch::ones({7}, x.options()), 1e-5));
  EXPECT_ANY_THROW(rms_norm_cuda(x, torch::ones({8}, x.options().dtype(torch::kBFloat16)), 1e-5));
  EXPECT_ANY_THROW(rms_norm_cuda(x.cpu(), torch::ones({8}), 1e-5));
}

}  // namespace
}  // namespace align
