#include "train/grad_clip.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

namespace align {
namespace {

NamedTensors two_params(torch::ScalarType dtype = torch::kFloat32) {
  torch::Tensor a = torch::zeros({2, 3}, dtype).set_requires_grad(true);
  torch::Tensor b = torch::zeros({4}, dtype).set_requires_grad(true);
  a.mutable_grad() =
      torch::tensor({3.0f, -4.0f, 1.0f, 2.0f, 0.5f, -1.5f}).reshape({2, 3}).to(dtype);
  b.mutable_grad() = torch::tensor({0.25f, 2.0f, -3.0f, 1.0f}).to(dtype);
  return {{"a", a}, {"b", b}};
}

// Sum of squares of every gradient entry above, by hand.
const double kSumSquares = 9 + 16 + 1 + 4 + 0.25 + 2.25 + 0.0625 + 4 + 9 + 1;

TEST(GradClip, NormIsTheGlobalL2NormAndGradsScaleDown) {
  NamedTensors params = two_params();
  const double norm = std::sqrt(kSumSquares);
  const torch::Tensor total = clip_grad_norm(params, 2.0);
  EXPECT_EQ(total.scalar_type(), torch::kFloat32);
  EXPECT_EQ(total.dim(), 0);
  EXPECT_NEAR(total.item<double>(), norm, 1e-5);
  // torch.nn.utils.clip_grad_norm_ on the same grads (torch 2.11): 6.82367182.
  EXPECT_EQ(total.item<float>(), 6.82367182f);
  const double coef = 2.0 / (norm + 1e-6);
  EXPECT_NEAR(params[0].second.grad()[0][1].item<double>(), -4.0 * coef, 1e-6);
  EXPECT_NEAR(params[1].second.grad()[2].item<double>(), -3.0 * coef, 1e-6);
  // torch's values for two entries, bit for bit.
  EXPECT_EQ(params[0].second.grad()[0][0].item<float>(), 0.879291892f);
  EXPECT_EQ(params[1].second.grad()[0].item<float>(), 0.0732743219f);
  // After clipping, the global norm is max_norm.
  double sq = 0;
  for (auto& [name, p] : params)
    sq += p.grad().to(torch::kFloat64).pow(2).sum().item<double>();
  EXPECT_NEAR(std::sqrt(sq), 2.0, 1e-5);
}

TEST(GradClip, BelowMaxNormOrDisabledLeavesGradsAlone) {
  for (double max_norm : {100.0, 0.0, -1.0}) {
    NamedTensors params = two_params();
    const torch::Tensor before = params[0].second.grad().clone();
    const torch::Tensor total = clip_grad_norm(params, max_norm);
    EXPECT_NEAR(total.item<double>(), std::sqrt(kSumSquares), 1e-5) << max_norm;
    EXPECT_TRUE(torch::equal(params[0].second.grad(), before)) << max_norm;
  }
}

TEST(GradClip, Bf16GradsAreMeasuredInFp32AndParamsWithoutGradSkipped) {
  NamedTensors params = two_params(torch::kBFloat16);
  params.emplace_back("no_grad", torch::zeros({3}).set_requires_grad(true));
  const torch::Tensor total = clip_grad_norm(params, 0);
  EXPECT_EQ(total.scalar_type(), torch::kFloat32);
  // Every gradient value is exact in bf16, so the fp32 norm is the exact one.
  EXPECT_NEAR(total.item<double>(), std::sqrt(kSumSquares), 1e-5);
  EXPECT_EQ(clip_grad_norm({{"x", torch::zeros({2}).set_requires_grad(true)}}, 1.0).item<float>(),
            0.0f);
}

}  // namespace
}  // namespace align
