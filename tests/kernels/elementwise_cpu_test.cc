// The CPU twins of the element-wise kernels (kernels/elementwise_cpu.h) against their LibTorch
// references, over awkward widths (not multiples of 16), strided rows, batched shapes and values
// where SiLU's two branches and its tails matter; and the dispatch: fp32 CPU calls with grad mode
// off take the twin; grad mode on, bf16 and a ReferenceOpsScope keep the reference.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/kernel_support.h"
#include "kernels/residual_rms_norm_op.h"
#include "kernels/rms_norm_op.h"
#include "kernels/silu_gate_op.h"

namespace align {
namespace {

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  return (got - want).abs().max().item<double>() / (want.abs().max().item<double>() + 1e-12);
}

// fp32: the twins sum in another order and SiLU's exp is a polynomial (about 2 ulp).
constexpr double kTol = 2e-6;

TEST(ElementwiseCpu, RmsNormMatchesReference) {
  torch::manual_seed(0);
  for (int64_t rows : {1, 3, 113}) {
    for (int64_t cols : {1, 7, 16, 100, 768, 5120}) {
      torch::Tensor x = torch::randn({rows, cols}) * 3;
      torch::Tensor w = torch::randn({cols});
      EXPECT_LE(rel_err(rms_norm_cpu(x, w, 1e-5), rms_norm_reference(x, w, 1e-5)), kTol)
          << rows << " x " << cols;
    }
  }
  torch::Tensor wide = torch::randn({2, 3, 200});
  torch::Tensor x = wide.narrow(2, 10, 128);  // rows 200 apart
  torch::Tensor w = torch::randn({128});
  torch::Tensor got = rms_norm_cpu(x, w, 1e-6);
  EXPECT_EQ(got.sizes(), x.sizes());
  EXPECT_LE(rel_err(got, rms_norm_reference(x, w, 1e-6)), kTol);
}

TEST(ElementwiseCpu, ResidualRmsNormMatchesReference) {
  torch::manual_seed(1);
  for (int64_t rows : {1, 5, 113}) {
    for (int64_t cols : {3, 64, 770}) {
      torch::Tensor wide = torch::randn({rows, cols + 9});
      torch::Tensor x = wide.narrow(1, 4, cols);  // strided rows
      torch::Tensor r = torch::randn({rows, cols});
      torch::Tensor w = torch::randn({cols});
      auto [h, out] = residual_rms_norm_cpu(x, r, w, 1e-5);
      auto [h_ref, out_ref] = residual_rms_norm_reference(x, r, w, 1e-5);
      EXPECT_TRUE(torch::equal(h, h_ref)) << rows << " x " << cols;  // one fp32 add either way
      EXPECT_LE(rel_err(out, out_ref), kTol) << rows << " x " << cols;
    }
  }
}

TEST(ElementwiseCpu, SiluGateMatchesReference) {
  torch::manual_seed(2);
  for (int64_t rows : {1, 4, 113}) {
    for (int64_t cols : {1, 15, 2048}) {
      torch::Tensor gate_up = torch::randn({rows, 2 * cols}) * 6;
      EXPECT_LE(rel_err(silu_gate_cpu(gate_up), silu_gate_reference(gate_up)), kTol)
          << rows << " x " << cols;
    }
  }
  // Both branches and the tails, elementwise: silu(g) ~ g for large g, ~ g e^g below.
  torch::Tensor g = torch::tensor({-100.f, -30.f, -5.f, -1e-3f, 0.f, 1e-3f, 2.f, 30.f, 100.f});
  torch::Tensor gate_up = torch::cat({g, torch::ones_like(g)}).view({1, -1});
  torch::Tensor got = silu_gate_cpu(gate_up), want = silu_gate_reference(gate_up);
  EXPECT_TRUE(torch::allclose(got, want, 2e-6, 1e-30)) << got << want;
}

TEST(ElementwiseCpu, DispatchTakesTheTwinOnlyForFp32WithGradModeOff) {
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({4, 33});
  torch::Tensor w = torch::randn({33});
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(rms_norm(x, w, 1e-5), rms_norm_cpu(x, w, 1e-5)));
    EXPECT_FALSE(torch::equal(rms_norm_cpu(x, w, 1e-5), rms_norm_reference(x, w, 1e-5)))
        << "the twin sums in its own order: equal results would not tell the paths apart";
    const ReferenceOpsScope references;
    EXPECT_TRUE(torch::equal(rms_norm(x, w, 1e-5), rms_norm_reference(x, w, 1e-5)));
  }
  // Grad mode on: the reference, even when nothing requires a gradient (a training forward).
  EXPECT_TRUE(torch::equal(rms_norm(x, w, 1e-5), rms_norm_reference(x, w, 1e-5)));
  torch::Tensor wg = w.clone().requires_grad_(true);
  torch::Tensor y = rms_norm(x, wg, 1e-5);
  ASSERT_TRUE(y.requires_grad());  // the reference, differentiable
  EXPECT_TRUE(torch::equal(y.detach(), rms_norm_reference(x, w, 1e-5)));
  torch::Tensor xb = x.to(torch::kBFloat16), wb = w.to(torch::kBFloat16);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(rms_norm(xb, wb, 1e-5), rms_norm_reference(xb, wb, 1e-5)));
}

}  // namespace
}  // namespace align
