// The GRPO losses against values derived by hand from their formulas (grpo/grpo_loss.h): the
// group-relative advantages under each scale_rewards, the clipped surrogate on both sides, the
// sequence-level ratio (GSPO), the k3 KL with and without the ratio, the entropy mask, and the
// normalisation of each loss_type over micro-batches.
#include "grpo/grpo_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "common/error.h"

namespace align {
namespace {

torch::Tensor t2(std::initializer_list<std::initializer_list<float>> rows) {
  std::vector<torch::Tensor> r;
  for (const auto& row : rows)
    r.push_back(torch::tensor(std::vector<float>(row), torch::kFloat));
  return torch::stack(r);
}

double at(const torch::Tensor& t, int64_t i, int64_t j) {
  return t.index({i, j}).item<double>();
}

TEST(GrpoAdvantages, GroupBatchAndNoneScaling) {
  // Two groups of 4: rewards 1 0 0 1 (mean 0.5, std (n-1) sqrt(1/3)) and 2 2 2 2 (std 0).
  const torch::Tensor r = torch::tensor({1.0, 0.0, 0.0, 1.0, 2.0, 2.0, 2.0, 2.0}, torch::kFloat);
  const GroupAdvantages g = group_advantages(r, 4, ScaleRewards::kGroup);
  const double s = std::sqrt(1.0 / 3.0);
  EXPECT_NEAR(g.advantages[0].item<double>(), 0.5 / (s + 1e-4), 1e-5);
  EXPECT_NEAR(g.advantages[1].item<double>(), -0.5 / (s + 1e-4), 1e-5);
  EXPECT_EQ(g.advantages[5].item<double>(), 0.0);  // one reward in the group: no signal
  EXPECT_FALSE(g.zero_std[0].item<bool>());
  EXPECT_TRUE(g.zero_std[4].item<bool>());

  // none: r - mean of the group, unscaled (Dr. GRPO); the std still flags zero-std groups.
  const GroupAdvantages n = group_advantages(r, 4, ScaleRewards::kNone);
  EXPECT_NEAR(n.advantages[0].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(n.advantages[2].item<double>(), -0.5, 1e-6);
  EXPECT_TRUE(n.zero_std[7].item<bool>());

  // batch: centred on the group, scaled by the std of all 8: mean 1.25, squared deviations
  // 2 x 0.0625 + 2 x 1.5625 + 4 x 0.5625 = 5.5 -> variance 5.5 / 7.
  const GroupAdvantages b = group_advantages(r, 4, ScaleRewards::kBatch);
  const double bs = std::sqrt(5.5 / 7.0);
  EXPECT_NEAR(b.advantages[0].item<double>(), 0.5 / (bs + 1e-4), 1e-5);
  EXPECT_NEAR(b.advantages[4].item<double>(), 0.0, 1e-7);
  EXPECT_FALSE(b.zero_std[4].item<bool>());  // the batch's std is what counts

  EXPECT_THROW(group_advantages(r, 3, ScaleRewards::kGroup), Error);
}

// One completion, two tokens; A > 0 and A < 0 versions.
struct Fixed {
  torch::Tensor logps = t2({{-1.0f, -2.0f}}).requires_grad_(true);
  // log ratios: token 0 +0.5 (w = 1.6487), token 1 -0.1 (w = 0.9048)
  torch::Tensor old = t2({{-1.5f, -1.9f}});
  torch::Tensor mask = t2({{1.0f, 1.0f}});
};

TEST(GrpoLoss, ClippedSurrogateOnBothSides) {
  Fixed f;
  GrpoLossOptions o;  // epsilon 0.2: clip to [0.8, 1.2]
  GrpoLossInputs in{f.logps, f.old, {}, {}, torch::tensor({2.0f}), f.mask};
  const GrpoLossOutput out = grpo_loss(o, in);
  const double w0 = std::exp(0.5), w1 = std::exp(-0.1);
  // A = 2 > 0: -min(w A, clip(w) A): token 0 clipped at 1.2 (-2.4), token 1 unclipped (-2 w1).
  EXPECT_NEAR(at(out.per_token_loss, 0, 0), -2.4, 1e-5);
  EXPECT_NEAR(at(out.per_token_loss, 0, 1), -2 * w1, 1e-5);
  EXPECT_NEAR(at(out.ratio, 0, 0), w0, 1e-5);
  EXPECT_TRUE(out.high_clipped.index({0, 0}).item<bool>());
  EXPECT_FALSE(out.low_clipped.index({0, 0}).item<bool>());
  EXPECT_FALSE(out.kl.defined());  // beta 0
  // d/dlogp: the clipped token has no gradient; the other -A w.
  out.per_token_loss.sum().backward();
  EXPECT_NEAR(f.logps.grad().index({0, 0}).item<double>(), 0.0, 1e-7);
  EXPECT_NEAR(f.logps.grad().index({0, 1}).item<double>(), -2 * w1, 1e-5);

  // A = -1 < 0: -min(-w, -clip(w)) = max(w, clip(w)): token 0 keeps w0 (no clip on that side),
  // token 1 (w1 = 0.905 >= 0.8) unclipped; with epsilon 0.05 (floor 0.95) token 1 clips low.
  Fixed g;
  GrpoLossInputs neg{g.logps, g.old, {}, {}, torch::tensor({-1.0f}), g.mask};
  const GrpoLossOutput n = grpo_loss(o, neg);
  EXPECT_NEAR(at(n.per_token_loss, 0, 0), w0, 1e-5);
  EXPECT_NEAR(at(n.per_token_loss, 0, 1), w1, 1e-5);
  o.epsilon = 0.05;
  o.epsilon_high = 0.05;
  const GrpoLossOutput n2 = grpo_loss(o, neg);
  EXPECT_NEAR(at(n2.per_token_loss, 0, 1), 0.95, 1e-6);
  EXPECT_TRUE(n2.low_clipped.index({0, 1}).item<bool>());
  EXPECT_FALSE(n2.low_clipped.index({0, 0}).item<bool>());

  // Clip-higher: epsilon_high 0.7 lets token 0 (w0 = 1.65 < 1.7) through unclipped.
  GrpoLossOptions dapo;
  dapo.epsilon_high = 0.7;
  const GrpoLossOutput h = grpo_loss(dapo, in);
  EXPECT_NEAR(at(h.per_token_loss, 0, 0), -2 * w0, 1e-5);
  EXPECT_FALSE(h.high_clipped.index({0, 0}).item<bool>());
}

TEST(GrpoLoss, OnPolicyRatioIsOneWithThePolicyGradient) {
  Fixed f;
  GrpoLossInputs in{f.logps, {}, {}, {}, torch::tensor({0.5f}), f.mask};
  const GrpoLossOutput out = grpo_loss(GrpoLossOptions{}, in);
  EXPECT_EQ(at(out.ratio, 0, 0), 1.0);
  EXPECT_NEAR(at(out.per_token_loss, 0, 1), -0.5, 1e-7);
  out.per_token_loss.sum().backward();  // d(-w A)/dlogp = -A w = -A
  EXPECT_NEAR(f.logps.grad().index({0, 0}).item<double>(), -0.5, 1e-7);
}

TEST(GrpoLoss, SequenceLevelRatioIsTheMeanLogRatio) {
  // GSPO: w = exp(mean_t over the mask of l): (0.5 - 0.1) / 2 = 0.2 -> w = e^0.2 = 1.2214,
  // clipped at 1.2 for A > 0; the third token is padding.
  torch::Tensor logps = t2({{-1.0f, -2.0f, -3.0f}}).requires_grad_(true);
  const torch::Tensor old = t2({{-1.5f, -1.9f, 0.0f}});
  const torch::Tensor mask = t2({{1.0f, 1.0f, 0.0f}});
  GrpoLossOptions o;
  o.level = ImportanceSamplingLevel::kSequence;
  GrpoLossInputs in{logps, old, {}, {}, torch::tensor({1.0f}), mask};
  const GrpoLossOutput out = grpo_loss(o, in);
  EXPECT_EQ(out.ratio.size(1), 1);
  EXPECT_NEAR(out.ratio.item<double>(), std::exp(0.2), 1e-5);
  EXPECT_NEAR(at(out.per_token_loss, 0, 0), -1.2, 1e-6);
  EXPECT_NEAR(at(out.per_token_loss, 0, 2), -1.2, 1e-6);  // repeated on every token
  EXPECT_TRUE(out.high_clipped.item<bool>());
  // epsilon 0.3: unclipped, -w; d/dlogp_t = -w * m_t / 2.
  o.epsilon = o.epsilon_high = 0.3;
  const GrpoLossOutput u = grpo_loss(o, in);
  grpo_objective(GrpoLossType::kGrpo, u.per_token_loss, mask, {}).backward();
  EXPECT_NEAR(logps.grad().index({0, 0}).item<double>(), -std::exp(0.2) / 2, 1e-5);
  EXPECT_NEAR(logps.grad().index({0, 2}).item<double>(), 0.0, 1e-7);
}

TEST(GrpoLoss, K3KlWithAndWithoutTheRatio) {
  // d = ref - logp: token 0: -1.2 - -1 = -0.2, token 1: -1.5 - -2 = 0.5.
  Fixed f;
  const torch::Tensor ref = t2({{-1.2f, -1.5f}});
  GrpoLossOptions o;
  o.beta = 0.1;
  o.use_bias_correction_kl = false;
  GrpoLossInputs in{f.logps, {}, ref, {}, torch::tensor({0.0f}), f.mask};  // A = 0: KL only
  const GrpoLossOutput out = grpo_loss(o, in);
  auto k3 = [](double d) { return std::exp(d) - d - 1; };
  EXPECT_NEAR(at(out.kl, 0, 0), k3(-0.2), 1e-6);
  EXPECT_NEAR(at(out.kl, 0, 1), k3(0.5), 1e-6);
  EXPECT_NEAR(at(out.per_token_loss, 0, 1), 0.1 * k3(0.5), 1e-6);
  // d k3 / dlogp = -(e^d - 1) (d = ref - logp).
  out.per_token_loss.sum().backward();
  EXPECT_NEAR(f.logps.grad().index({0, 1}).item<double>(), -0.1 * (std::exp(0.5) - 1), 1e-6);

  // With the ratio (off policy, pi_old shifted): kl x w, and w carries gradient too.
  Fixed g;
  GrpoLossOptions c;
  c.beta = 0.1;
  GrpoLossInputs off{g.logps, g.old, ref, {}, torch::tensor({0.0f}), g.mask};
  const GrpoLossOutput w = grpo_loss(c, off);
  EXPECT_NEAR(at(w.kl, 0, 0), k3(-0.2) * std::exp(0.5), 1e-5);
  // On policy the value is k3 (w = 1) but the gradient gains k3: d(k3 w) = dk3 + k3 dw.
  Fixed h;
  GrpoLossInputs on{h.logps, {}, ref, {}, torch::tensor({0.0f}), h.mask};
  const GrpoLossOutput v = grpo_loss(c, on);
  EXPECT_NEAR(at(v.kl, 0, 1), k3(0.5), 1e-6);
  v.per_token_loss.sum().backward();
  EXPECT_NEAR(h.logps.grad().index({0, 1}).item<double>(), 0.1 * (-(std::exp(0.5) - 1) + k3(0.5)),
              1e-6);
}

TEST(GrpoLoss, TopEntropyQuantileKeepsTheHighEntropyTokens) {
  // Entropies 1, 4, 2, 3 (padding 9 not counted): the 0.5 quantile of {1, 2, 3, 4} is 2.5, so
  // the tokens of entropy 3 and 4 keep their policy loss.
  torch::Tensor logps = t2({{-1.0f, -1.0f, -1.0f}, {-1.0f, -1.0f, -1.0f}});
  const torch::Tensor mask = t2({{1.0f, 1.0f, 0.0f}, {1.0f, 1.0f, 0.0f}});
  const torch::Tensor H = t2({{1.0f, 4.0f, 9.0f}, {2.0f, 3.0f, 9.0f}});
  GrpoLossOptions o;
  o.top_entropy_quantile = 0.5;
  GrpoLossInputs in{logps, {}, {}, H, torch::tensor({1.0f, 1.0f}), mask};
  const GrpoLossOutput out = grpo_loss(o, in);
  EXPECT_EQ(at(out.per_token_loss, 0, 0), 0.0);
  EXPECT_NEAR(at(out.per_token_loss, 0, 1), -1.0, 1e-7);
  EXPECT_EQ(at(out.per_token_loss, 1, 0), 0.0);
  EXPECT_NEAR(at(out.per_token_loss, 1, 1), -1.0, 1e-7);
  EXPECT_EQ(at(out.per_token_loss, 0, 2), 0.0);
}

TEST(GrpoLoss, EachLossTypeNormalisesAsTrl) {
  // Two completions of 1 and 3 tokens (T = 3), per-token losses 1..6, in a step of M = 2
  // micro-batches with 10 tokens in all, max_completion_length 4.
  const torch::Tensor L = t2({{1.0f, 2.0f, 3.0f}, {4.0f, 5.0f, 6.0f}});
  const torch::Tensor m = t2({{1.0f, 0.0f, 0.0f}, {1.0f, 1.0f, 1.0f}});
  const GrpoNormalizer n{2, 10.0, 4};
  auto obj = [&](GrpoLossType t) { return grpo_objective(t, L, m, n).item<double>(); };
  // grpo: mean over sequences of the sequence means (1 and 5), / M.
  EXPECT_NEAR(obj(GrpoLossType::kGrpo), (1.0 + 5.0) / 2 / 2, 1e-6);
  // bnpo: token mean of the micro-batch (16 / 4), / M.
  EXPECT_NEAR(obj(GrpoLossType::kBnpo), 16.0 / 4 / 2, 1e-6);
  // dr_grpo: sum / (B x max_completion_length), / M.
  EXPECT_NEAR(obj(GrpoLossType::kDrGrpo), 16.0 / (2 * 4) / 2, 1e-6);
  // dapo: sum / the step's tokens (no / M: the step's tokens already count every micro-batch).
  EXPECT_NEAR(obj(GrpoLossType::kDapo), 16.0 / 10, 1e-6);
}

TEST(GrpoLoss, OptionsOutOfRangeNameTheKey) {
  GrpoLossOptions o;
  o.beta = -1;
  EXPECT_THROW(validate(o), InputError);
  o = {};
  o.top_entropy_quantile = 0;
  try {
    validate(o);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("grpo.top_entropy_quantile"), std::string::npos);
  }
}

}  // namespace
}  // namespace align
