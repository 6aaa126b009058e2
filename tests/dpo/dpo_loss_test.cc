// The DPO losses against values derived by hand from their formulas (dpo/dpo_loss.h), gradients
// against the hand-derived derivative, and the step objective's weighting and normalisation.
#include "dpo/dpo_loss.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "common/error.h"

namespace align {
namespace {

// log(1 + e^x), the negative log-sigmoid of -x.
double softplus(double x) {
  return std::log1p(std::exp(x));
}

// Two pairs: pair 0 has z = (-1 - -2) - (-3 - -2) = 2; pair 1 has z = (-4 - -3) - (-2 - -3) = -2.
struct Fixed {
  torch::Tensor pc = torch::tensor({-1.0, -4.0}, torch::kFloat).requires_grad_(true);
  torch::Tensor pr = torch::tensor({-3.0, -2.0}, torch::kFloat);
  torch::Tensor rc = torch::tensor({-2.0, -3.0}, torch::kFloat);
  torch::Tensor rr = torch::tensor({-2.0, -3.0}, torch::kFloat);
  const double z[2] = {2.0, -2.0};
};

DpoLossOutput run(const Fixed& f, DpoLossType type, double beta, double e = 0) {
  return dpo_loss({type, beta, e}, f.pc, f.pr, f.rc, f.rr);
}

TEST(DpoLoss, SigmoidMatchesHandDerivation) {
  Fixed f;
  const double beta = 0.5;
  const DpoLossOutput out = run(f, DpoLossType::kSigmoid, beta);
  for (int i = 0; i < 2; ++i) {
    // -log sigmoid(beta z) = log(1 + e^{-beta z})
    EXPECT_NEAR(out.losses[i].item<double>(), softplus(-beta * f.z[i]), 1e-6);
  }
  EXPECT_NEAR(out.losses[0].item<double>(), 0.313261687518, 1e-6);  // log(1 + e^-1)
  // Rewards: beta (pi - ref): pair 0 chosen 0.5 * 1, rejected 0.5 * -1.
  EXPECT_NEAR(out.chosen_rewards[0].item<double>(), 0.5, 1e-7);
  EXPECT_NEAR(out.rejected_rewards[0].item<double>(), -0.5, 1e-7);
  EXPECT_FALSE(out.chosen_rewards.requires_grad());
  // d/d pc of -log sigmoid(beta z) = -beta sigmoid(-beta z).
  out.losses.sum().backward();
  for (int i = 0; i < 2; ++i) {
    const double want = -beta / (1 + std::exp(beta * f.z[i]));
    EXPECT_NEAR(f.pc.grad()[i].item<double>(), want, 1e-6);
  }
}

TEST(DpoLoss, LabelSmoothingIsConservativeDpo) {
  Fixed f;
  const double beta = 0.5, e = 0.1;
  const DpoLossOutput out = run(f, DpoLossType::kSigmoid, beta, e);
  for (int i = 0; i < 2; ++i) {
    const double bz = beta * f.z[i];
    EXPECT_NEAR(out.losses[i].item<double>(), (1 - e) * softplus(-bz) + e * softplus(bz), 1e-6);
  }
  out.losses.sum().backward();
  for (int i = 0; i < 2; ++i) {
    const double bz = beta * f.z[i];
    const double s = 1 / (1 + std::exp(-bz));  // sigmoid(beta z)
    EXPECT_NEAR(f.pc.grad()[i].item<double>(), -(1 - e) * beta * (1 - s) + e * beta * s, 1e-6);
  }
}

TEST(DpoLoss, IpoIsSquaredDistanceToHalfInverseBeta) {
  Fixed f;
  const DpoLossOutput out = run(f, DpoLossType::kIpo, 0.5);
  // (z - 1/(2 * 0.5))^2: (2 - 1)^2 = 1 and (-2 - 1)^2 = 9.
  EXPECT_NEAR(out.losses[0].item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(out.losses[1].item<double>(), 9.0, 1e-6);
  out.losses.sum().backward();  // 2 (z - 1): 2 and -6
  EXPECT_NEAR(f.pc.grad()[0].item<double>(), 2.0, 1e-6);
  EXPECT_NEAR(f.pc.grad()[1].item<double>(), -6.0, 1e-6);
}

TEST(DpoLoss, HingeIsReluOfOneMinusBetaZ) {
  Fixed f;
  const DpoLossOutput out = run(f, DpoLossType::kHinge, 0.25);
  // 1 - 0.25 * 2 = 0.5; 1 + 0.25 * 2 = 1.5.
  EXPECT_NEAR(out.losses[0].item<double>(), 0.5, 1e-6);
  EXPECT_NEAR(out.losses[1].item<double>(), 1.5, 1e-6);
  const DpoLossOutput flat = run(f, DpoLossType::kHinge, 1.0);  // 1 - 2 < 0: no loss, no grad
  EXPECT_EQ(flat.losses[0].item<double>(), 0.0);
  flat.losses.sum().backward();
  EXPECT_EQ(f.pc.grad()[0].item<double>(), 0.0);
  EXPECT_NEAR(f.pc.grad()[1].item<double>(), -1.0, 1e-6);
}

TEST(DpoLoss, RobustMatchesChowdhuryFormula) {
  Fixed f;
  const double beta = 0.5, e = 0.2;
  const DpoLossOutput out = run(f, DpoLossType::kRobust, beta, e);
  for (int i = 0; i < 2; ++i) {
    const double bz = beta * f.z[i];
    // (-(1-e) log s(bz) + e log s(-bz)) / (1 - 2e) = ((1-e) sp(-bz) - e sp(bz)) / (1 - 2e)
    EXPECT_NEAR(out.losses[i].item<double>(), ((1 - e) * softplus(-bz) - e * softplus(bz)) / 0.6,
                1e-6);
  }
  // With e = 0 it is the plain sigmoid loss.
  const DpoLossOutput plain = run(f, DpoLossType::kRobust, beta, 0);
  const DpoLossOutput sig = run(f, DpoLossType::kSigmoid, beta, 0);
  EXPECT_TRUE(torch::allclose(plain.losses, sig.losses));
}

TEST(DpoLoss, StepObjectiveWeightsAndNormalisesByTheWholeStep) {
  const torch::Tensor losses = torch::tensor({0.5, 2.0}, torch::kFloat);
  const torch::Tensor weights = torch::tensor({1.0, 3.0}, torch::kFloat);
  const torch::Tensor chosen = torch::tensor({-6.0, -2.0}, torch::kFloat);
  // Weighted mean over a step of total weight 8 (these two pairs and others of weight 4).
  const double got = dpo_step_objective(losses, weights, 8.0, chosen, 0.0, 1).item<double>();
  EXPECT_NEAR(got, (0.5 + 3 * 2.0) / 8.0, 1e-7);
  // NLL term: 0.5 * (6 + 2) / 10 chosen tokens in the step.
  const double with_nll = dpo_step_objective(losses, weights, 8.0, chosen, 0.5, 10).item<double>();
  EXPECT_NEAR(with_nll, (0.5 + 6.0) / 8.0 + 0.5 * 8.0 / 10.0, 1e-6);
}

TEST(DpoLoss, OptionsAreValidatedByName) {
  EXPECT_THROW(parse_enum<DpoLossType>("kto", "dpo.loss"), InputError);
  try {
    validate(DpoLossOptions{DpoLossType::kIpo, 0.1, 0.1});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("dpo.label_smoothing"), std::string::npos);
  }
  EXPECT_THROW(validate(DpoLossOptions{DpoLossType::kSigmoid, 0.0, 0.0}), InputError);
  EXPECT_THROW(validate(DpoLossOptions{DpoLossType::kRobust, 0.1, 0.5}), InputError);
}

}  // namespace
}  // namespace align
