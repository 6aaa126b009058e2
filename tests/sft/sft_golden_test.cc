// SFT parity with Hugging Face: on the tiny golden model, the loss and every parameter's gradient
// for one batch, then three AdamW steps with clipping, against transformers + torch.optim
// (tests/golden/sft/phi4_tiny_steps.json, written by tools/golden_sft.py).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "model/phi3_model.h"
#include "sft/sft_loss.h"
#include "tests/test_util.h"
#include "train/adamw.h"
#include "train/grad_clip.h"

namespace align {
namespace {

struct Golden {
  nlohmann::json j;
  TrainBatch batch;
  int64_t count = 0;
};

// HF labels [B, T] (-100 = no loss) -> our targets: targets[t] = labels[t + 1].
Golden load_golden() {
  Golden g;
  g.j = nlohmann::json::parse(read_file(testing::golden_path("sft/phi4_tiny_steps.json")));
  auto ids = g.j["ids"].get<std::vector<std::vector<int64_t>>>();
  auto labels = g.j["labels"].get<std::vector<std::vector<int64_t>>>();
  const int64_t B = static_cast<int64_t>(ids.size()), T = static_cast<int64_t>(ids[0].size());
  std::vector<int64_t> flat_ids, targets, positions;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t = 0; t < T; ++t) {
      flat_ids.push_back(ids[b][t]);
      positions.push_back(t);
      const int64_t target = t + 1 < T ? labels[b][t + 1] : -100;
      targets.push_back(target);
      g.count += target != -100;
    }
  }
  g.batch.tokens = torch::tensor(flat_ids).view({B, T});
  g.batch.positions = torch::tensor(positions).view({B, T});
  g.batch.segments = torch::zeros({B, T}, torch::kInt64);
  g.batch.targets = torch::tensor(targets).view({B, T});
  g.batch.num_targets = g.count;
  return g;
}

NamedTensors trainable_weights(Phi3Model& model) {
  model.make_weights_owned();
  NamedTensors params = named_weights(model.config(), model.weights());
  for (auto& [name, w] : params)
    w.requires_grad_(true);
  return params;
}

double rel_err(double got, double want) {
  return std::abs(got - want) / (std::abs(want) + 1e-6);
}

TEST(SftGolden, LossAndGradientsMatchTransformers) {
  Golden g = load_golden();
  Phi3Model model =
      Phi3Model::load(testing::golden_path("model/phi4_tiny"), torch::kFloat32, torch::kCPU);
  NamedTensors params = trainable_weights(model);
  torch::Tensor loss = sft_loss_sum(model, g.batch) / static_cast<double>(g.count);
  const double loss_err = rel_err(loss.item<double>(), g.j["loss"].get<double>());
  EXPECT_LT(loss_err, 1e-6);
  loss.backward();
  double worst = 0;
  for (const auto& [name, w] : params) {
    ASSERT_TRUE(g.j["grads"].contains(name)) << name;
    const auto& want = g.j["grads"][name];
    const torch::Tensor grad = w.grad().flatten();
    // Sum of squares and the first values are robust; a plain sum can cancel to ~0.
    worst = std::max(worst, rel_err((grad * grad).sum().item<double>(), want["sum_sq"]));
    auto first = want["first"].get<std::vector<double>>();
    const double scale = std::sqrt(want["sum_sq"].get<double>() / grad.numel()) + 1e-12;
    for (size_t i = 0; i < first.size(); ++i) {
      EXPECT_LT(std::abs(grad[i].item<double>() - first[i]) / scale, 1e-4)
          << name << "[" << i << "]";
    }
  }
  EXPECT_LT(worst, 1e-5);
  std::cout << "measured vs transformers: loss rel err " << loss_err
            << ", worst per-tensor grad sum-of-squares rel err " << worst << "\n";
}

TEST(SftGolden, AdamWStepsWithClippingMatchTorchOptim) {
  Golden g = load_golden();
  Phi3Model model =
      Phi3Model::load(testing::golden_path("model/phi4_tiny"), torch::kFloat32, torch::kCPU);
  model.set_training(true);
  NamedTensors params = trainable_weights(model);
  const auto& o = g.j["optimizer"];
  AdamWOptions opt;
  opt.beta1 = o["betas"][0];
  opt.beta2 = o["betas"][1];
  opt.eps = o["eps"];
  opt.weight_decay = o["weight_decay"];
  opt.decay_1d_params = false;  // 2-D weights only, as the golden's parameter groups
  AdamW adam(params, opt);
  for (const auto& want : g.j["steps"]) {
    adam.zero_grad();
    torch::Tensor loss = sft_loss_sum(model, g.batch) / static_cast<double>(g.count);
    loss.backward();
    const double norm = clip_grad_norm(params, o["max_grad_norm"]).item<double>();
    adam.step(o["lr"]);
    EXPECT_LT(rel_err(loss.item<double>(), want["loss"]), 1e-5);
    EXPECT_LT(rel_err(norm, want["grad_norm"]), 1e-4);
  }
  for (const auto& [name, w] : params) {
    const double want = g.j["final_param_sums"][name];
    EXPECT_NEAR(w.sum().item<double>(), want, 1e-4 * (std::abs(want) + 1)) << name;
  }
}

}  // namespace
}  // namespace align
