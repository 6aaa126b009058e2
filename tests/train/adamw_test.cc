#include "train/adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "common/error.h"
#include "model/checkpoint.h"
#include "tests/test_util.h"

namespace align {
namespace {

torch::Tensor param(std::vector<float> values, std::vector<int64_t> shape,
                    torch::ScalarType dtype = torch::kFloat32) {
  return torch::tensor(values).reshape(shape).to(dtype).set_requires_grad(true);
}

void set_grad(const torch::Tensor& p, const torch::Tensor& g) {
  p.mutable_grad() = g.to(p.scalar_type()).reshape(p.sizes());
}

// The numbers torch.optim.AdamW (torch 2.11, CPU, foreach on and off alike) produces for:
//   W = [[0.5, -1.25, 2.0], [-0.75, 1.5, 0.25]] with weight_decay 0.1, b = [0.5, -1.5, 2.0] with
//   weight_decay 0 (two param groups), lr 1e-2, default betas/eps, three steps with the grads
//   below.
// Regenerate: W.grad = torch.tensor(gW[k]); b.grad = ...; opt.step(); print('%.9g' % x).
const std::vector<std::vector<float>> kGradW = {{0.25f, -0.5f, 1.5f, 0.125f, -2.0f, 0.75f},
                                                {-0.5f, 0.25f, 1.0f, 0.375f, -1.0f, -0.25f},
                                                {1.0f, 0.5f, -0.125f, -0.5f, 0.75f, 2.5f}};
const std::vector<std::vector<float>> kGradB = {
    {1.0f, -0.25f, 0.5f}, {0.5f, 0.75f, -1.0f}, {-0.25f, 0.5f, 0.125f}};

TEST(AdamW, MatchesTorchAdamWBitForBit) {
  torch::Tensor W = param({0.5f, -1.25f, 2.0f, -0.75f, 1.5f, 0.25f}, {2, 3});
  torch::Tensor b = param({0.5f, -1.5f, 2.0f}, {3});
  AdamWOptions options;
  options.weight_decay = 0.1;  // 2-D only by default: b is not decayed, as in the torch groups
  AdamW opt({{"W", W}, {"b", b}}, options);
  for (int k = 0; k < 3; ++k) {
    set_grad(W, torch::tensor(kGradW[k]));
    set_grad(b, torch::tensor(kGradB[k]));
    opt.step(1e-2);
  }
  const std::vector<float> want_W = {0.487982333f, -1.23633993f, 1.96729171f,
                                     -0.76628691f, 1.51959503f,  0.228249222f};
  const std::vector<float> want_b = {0.475041598f, -1.50158596f, 1.9957633f};
  auto W_flat = W.detach().flatten();
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(W_flat[i].item<float>(), want_W[i]) << "W[" << i << "]";
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(b[i].item<float>(), want_b[i]) << "b[" << i << "]";
  EXPECT_EQ(opt.step_count("W"), 3);
}

// The published update, written out in fp64 with plain torch ops.
TEST(AdamW, MatchesPublishedFormulaOverSeveralSteps) {
  torch::manual_seed(7);
  const torch::Tensor init = torch::randn({4, 5});
  torch::Tensor p = init.clone().set_requires_grad(true);
  AdamWOptions o;
  o.beta1 = 0.8;
  o.beta2 = 0.95;
  o.eps = 1e-6;
  o.weight_decay = 0.05;
  AdamW opt({{"p", p}}, o);

  torch::Tensor ref = init.to(torch::kFloat64);
  torch::Tensor m = torch::zeros_like(ref), v = torch::zeros_like(ref);
  const std::vector<double> lrs = {1e-2, 3e-3, 2e-2, 5e-3, 1e-2, 7e-3};
  for (size_t t = 1; t <= lrs.size(); ++t) {
    const torch::Tensor g = torch::randn({4, 5});
    set_grad(p, g);
    opt.step(lrs[t - 1]);
    const double lr = lrs[t - 1];
    const torch::Tensor gd = g.to(torch::kFloat64);
    ref = ref * (1 - lr * o.weight_decay);
    m = o.beta1 * m + (1 - o.beta1) * gd;
    v = o.beta2 * v + (1 - o.beta2) * gd * gd;
    const torch::Tensor m_hat = m / (1 - std::pow(o.beta1, t));
    const torch::Tensor v_hat = v / (1 - std::pow(o.beta2, t));
    ref = ref - lr * m_hat / (torch::sqrt(v_hat) + o.eps);
    const double err = (p.detach().to(torch::kFloat64) - ref).abs().max().item<double>();
    EXPECT_LT(err, 1e-6) << "step " << t;
  }
  // The parameter moved by far more than the tolerance, so the comparison means something.
  EXPECT_GT((p.detach() - init).abs().max().item<float>(), 1e-2f);
}

// lr 1e-6 on a bf16 weight 0.25: a bf16 ulp there is 2^-10 (values just below 0.25), so one step
// (about lr with Adam's normalised update) is 1/1000 of an ulp. In pure bf16 it rounds away every
// step; the fp32 master accumulates it and the bf16 weight moves once the master has travelled
// half an ulp (about 490 steps).
TEST(AdamW, Bf16MasterKeepsTinyUpdatesThatPureBf16Loses) {
  const float start = 0.25f;
  torch::Tensor w = param({start, start}, {2}, torch::kBFloat16);
  AdamWOptions o;
  o.weight_decay = 0;
  AdamW opt({{"w", w}}, o);
  const double lr = 1e-6, beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

  // Pure bf16 reference: the same update with every tensor in bf16.
  torch::Tensor p16 = torch::full({2}, start, torch::kBFloat16);
  torch::Tensor m16 = torch::zeros({2}, torch::kBFloat16),
                v16 = torch::zeros({2}, torch::kBFloat16);
  const torch::Tensor grad = torch::full({2}, 0.5f, torch::kBFloat16);

  int first_change = -1;
  for (int t = 1; t <= 700; ++t) {
    set_grad(w, grad);
    opt.step(lr);
    m16 = m16 * beta1 + grad * (1 - beta1);
    v16 = v16 * beta2 + grad * grad * (1 - beta2);
    p16 = p16 - (m16 / (1 - std::pow(beta1, t))) /
                    (torch::sqrt(v16 / (1 - std::pow(beta2, t))) + eps) * lr;
    if (t == 100) {
      // The master has moved by about 100 * lr; the live bf16 weight has not.
      const float master = opt.master("w")[0].item<float>();
      EXPECT_NEAR(start - master, 100 * lr, 5 * lr);
      EXPECT_EQ(w[0].item<float>(), start);
      EXPECT_EQ(opt.master("w").scalar_type(), torch::kFloat32);
    }
    if (first_change < 0 && w[0].item<float>() != start) first_change = t;
  }
  EXPECT_GT(first_change, 400);
  EXPECT_LT(first_change, 600);
  EXPECT_EQ(w[0].item<float>(), start - std::ldexp(1.0f, -10));  // one bf16 ulp below 0.25
  // The live weight is the master rounded to bf16.
  EXPECT_TRUE(torch::equal(w.detach(), opt.master("w").to(torch::kBFloat16)));
  // Pure bf16: nothing ever changed.
  EXPECT_EQ(p16[0].item<float>(), start);
}

TEST(AdamW, WeightDecayOnlyOnMatricesByDefault) {
  // With zero gradients the Adam term is 0 / (0 + eps) = 0, leaving only the decay.
  for (bool decay_1d : {false, true}) {
    torch::Tensor W = param({1, 2, 3, 4}, {2, 2});
    torch::Tensor norm = param({1, 2}, {2});
    AdamWOptions o;
    o.weight_decay = 0.5;
    o.decay_1d_params = decay_1d;
    AdamW opt({{"W", W}, {"norm.weight", norm}}, o);
    EXPECT_TRUE(opt.decays("W"));
    EXPECT_EQ(opt.decays("norm.weight"), decay_1d);
    set_grad(W, torch::zeros({2, 2}));
    set_grad(norm, torch::zeros({2}));
    opt.step(0.1);
    const float factor = 1 - 0.1f * 0.5f;
    EXPECT_TRUE(
        torch::allclose(W.detach(), torch::tensor({1.f, 2.f, 3.f, 4.f}).reshape({2, 2}) * factor));
    const torch::Tensor want_norm =
        decay_1d ? torch::tensor({factor, 2 * factor}) : torch::tensor({1.f, 2.f});
    EXPECT_TRUE(torch::allclose(norm.detach(), want_norm)) << "decay_1d " << decay_1d;
  }
}

TEST(AdamW, SkipsParametersWithoutGradAndZeroGradDropsGrads) {
  torch::Tensor a = param({1, 2}, {2});
  torch::Tensor b = param({3, 4}, {2});
  AdamW opt({{"a", a}, {"b", b}});
  set_grad(a, torch::ones({2}));
  opt.step(0.1);
  EXPECT_EQ(opt.step_count("a"), 1);
  EXPECT_EQ(opt.step_count("b"), 0);
  EXPECT_TRUE(torch::equal(b.detach(), torch::tensor({3.f, 4.f})));
  EXPECT_FALSE(torch::equal(a.detach(), torch::tensor({1.f, 2.f})));
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
  // Autograd accumulates into the live weights' grads after zero_grad.
  (a * 2).sum().backward();
  EXPECT_TRUE(torch::equal(a.grad(), torch::full({2}, 2.f)));
}

TEST(AdamW, MasterIsTakenFromLiveWeightAtFirstStep) {
  torch::Tensor w = param({1, 1}, {2}, torch::kBFloat16);
  AdamW opt({{"w", w}});
  {
    torch::NoGradGuard no_grad;
    w.fill_(2.0);  // weights loaded after the optimizer was built
  }
  set_grad(w, torch::zeros({2}));
  opt.step(0.0);
  EXPECT_EQ(opt.master("w")[0].item<float>(), 2.0f);
  EXPECT_EQ(w[0].item<float>(), 2.0f);
}

TEST(AdamW, SavedStateResumesIdentically) {
  testing::TempDir dir;
  torch::manual_seed(3);
  const torch::Tensor W0 = torch::randn({3, 4}), n0 = torch::randn({4}), B0 = torch::randn({4, 2});
  auto make = [&](NamedTensors& params) {
    params = {{"W", W0.clone().set_requires_grad(true)},
              {"norm", n0.clone().set_requires_grad(true)},
              {"B16", B0.to(torch::kBFloat16).set_requires_grad(true)}};
  };
  std::vector<std::vector<torch::Tensor>> grads;
  for (int k = 0; k < 5; ++k) {
    grads.push_back({torch::randn({3, 4}), torch::randn({4}), torch::randn({4, 2})});
  }
  auto run = [&](AdamW& opt, NamedTensors& params, int from, int to) {
    for (int k = from; k < to; ++k) {
      for (size_t i = 0; i < params.size(); ++i)
        set_grad(params[i].second, grads[k][i]);
      opt.step(1e-2 * (k + 1));
      opt.zero_grad();
    }
  };
  AdamWOptions o;
  o.weight_decay = 0.1;

  NamedTensors a;
  make(a);
  AdamW opt_a(a, o);
  run(opt_a, a, 0, 2);
  save_checkpoint(dir.file("opt"), opt_a.state_tensors());
  save_checkpoint(dir.file("weights"), a);

  NamedTensors b;
  make(b);
  AdamW opt_b(b, o);
  const Checkpoint weights = Checkpoint::open(dir.file("weights"));
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, t] : b)
      t.copy_(weights.get(name, t.scalar_type(), torch::kCPU));
  }
  opt_b.load_state(Checkpoint::open(dir.file("opt")));
  EXPECT_EQ(opt_b.step_count("W"), 2);

  run(opt_a, a, 2, 5);
  run(opt_b, b, 2, 5);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(torch::equal(a[i].second.detach(), b[i].second.detach())) << a[i].first;
    EXPECT_TRUE(torch::equal(opt_a.master(a[i].first), opt_b.master(b[i].first))) << a[i].first;
  }
  // The bf16 parameter's master carries more than its bf16 copy: resuming from the bf16 weights
  // alone would differ, which is why it is saved.
  EXPECT_FALSE(torch::equal(opt_a.master("B16"),
                            opt_a.master("B16").to(torch::kBFloat16).to(torch::kFloat32)));
  EXPECT_EQ(opt_b.step_count("B16"), 5);
}

TEST(AdamW, LoadStateRejectsMismatchNamingFileAndTensor) {
  testing::TempDir dir;
  torch::Tensor W = param({1, 2, 3, 4}, {2, 2}, torch::kBFloat16);
  AdamW opt({{"W", W}});
  NamedTensors state = opt.state_tensors();
  // Drop the master and give exp_avg the wrong shape.
  NamedTensors bad;
  for (auto& [name, t] : state) {
    if (name == "master/W") continue;
    bad.emplace_back(name, name == "exp_avg/W" ? torch::zeros({4}) : t);
  }
  bad.emplace_back("exp_avg/extra", torch::zeros({1}));
  save_checkpoint(dir.file("opt"), bad);
  try {
    opt.load_state(Checkpoint::open(dir.file("opt")));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find(dir.file("opt")), std::string::npos) << message;
    EXPECT_NE(message.find("master/W"), std::string::npos) << message;
    EXPECT_NE(message.find("exp_avg/W (expected Float [2, 2], found Float [4])"), std::string::npos)
        << message;
    EXPECT_NE(message.find("exp_avg/extra"), std::string::npos) << message;
  }
}

TEST(AdamW, RejectsBadOptions) {
  torch::Tensor W = param({1, 2}, {2});
  AdamWOptions o;
  o.beta2 = 1.0;
  EXPECT_THROW(AdamW({{"W", W}}, o), InputError);
  EXPECT_THROW(AdamW({{"W", W}, {"W", W}}), Error);
  EXPECT_THROW(AdamW({{"x", torch::zeros({2})}}), Error);  // does not require grad
}

}  // namespace
}  // namespace align
