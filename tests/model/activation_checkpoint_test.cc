// Activation checkpointing: the loss and every gradient equal those of the plain forward (full
// fine-tuning and LoRA, with LoRA dropout replaying the same masks), and the generic function
// returns the right gradients for its input and parameters.
#include <gtest/gtest.h>

#include <torch/autograd.h>
#include <torch/cuda.h>

#include "common/error.h"
#include "model/activation_checkpoint.h"
#include "model/init.h"
#include "tests/model/lora_test_util.h"

namespace align {
namespace {

using testing::golden_model;
using testing::max_abs_diff;
using testing::small_lora;

// Mean next-token cross-entropy over every position of every row (logits in fp32).
torch::Tensor lm_loss(const Phi3Model& model, const ForwardInput& base, bool checkpointed) {
  ForwardInput in = base;
  in.logits = LogitsAt::kAll;
  in.checkpoint_layers = checkpointed;
  auto logits = model.forward(in).logits;  // [B, T, V]
  const int64_t T = in.tokens.size(1);
  auto logp = torch::log_softmax(logits.narrow(1, 0, T - 1), -1);
  auto targets = in.tokens.narrow(1, 1, T - 1).unsqueeze(-1);
  return -logp.gather(-1, targets).mean();
}

struct TrainStep {
  double loss = 0;
  std::vector<std::pair<std::string, torch::Tensor>> grads;
};

// One forward and backward; returns the loss and the gradients of `params`, then clears them.
TrainStep run_once(const Phi3Model& model, const ForwardInput& in, bool checkpointed,
                   const std::vector<std::pair<std::string, torch::Tensor>>& params, uint64_t seed,
                   const std::function<void()>& between = {}) {
  torch::manual_seed(seed);
  auto loss = lm_loss(model, in, checkpointed);
  if (between) between();
  loss.backward();
  TrainStep r;
  r.loss = loss.item<double>();
  for (const auto& [name, t] : params) {
    EXPECT_TRUE(t.grad().defined()) << name;
    r.grads.emplace_back(name, t.grad().clone());
    t.mutable_grad().reset();
  }
  return r;
}

// Largest gradient difference relative to the gradient's own scale.
double worst_relative(const TrainStep& a, const TrainStep& b) {
  double worst = 0;
  for (size_t i = 0; i < a.grads.size(); ++i) {
    const double scale = a.grads[i].second.abs().max().item<double>();
    EXPECT_GT(scale, 0.0) << a.grads[i].first;
    worst = std::max(worst, max_abs_diff(a.grads[i].second, b.grads[i].second) / scale);
  }
  return worst;
}

ForwardInput rows(int64_t T, int64_t vocab, uint64_t seed) {
  ForwardInput in;
  in.tokens = testing::two_rows(T, vocab, seed);
  return in;
}

// fp32, same kernels in the same order: the recompute reproduces the forward exactly, and only
// accumulation order may differ. Measured: 0 (bit-identical) on x86 AVX2.
constexpr double kGradTolerance = 1e-6;

TEST(ActivationCheckpoint, FullFineTuneMatchesThePlainBackward) {
  for (const char* name : {"phi4_tiny", "mini_tiny"}) {
    Phi3Model model = golden_model(name);
    model.make_weights_owned();
    auto params = model.named_weights();
    for (auto& [n, t] : params)
      t.requires_grad_(true);
    ForwardInput in = rows(37, model.config().vocab_size, 1);
    if (std::string(name) == "mini_tiny") {  // packed segments, longrope, sliding window
      in.segments =
          torch::cat({torch::zeros({2, 15}, torch::kLong), torch::ones({2, 22}, torch::kLong)}, 1);
      in.positions =
          torch::cat({torch::arange(15), torch::arange(22)}).view({1, 37}).repeat({2, 1});
    }
    const TrainStep plain = run_once(model, in, false, params, 0);
    const TrainStep ckpt = run_once(model, in, true, params, 0);
    EXPECT_EQ(plain.loss, ckpt.loss) << name;
    const double err = worst_relative(plain, ckpt);
    std::cout << name << " full fine-tune: max relative grad difference " << err << "\n";
    EXPECT_LE(err, kGradTolerance) << name;
  }
}

TEST(ActivationCheckpoint, LoraWithDropoutReplaysTheMasks) {
  Phi3Model model = golden_model("phi4_tiny");
  LoraOptions o = small_lora();
  o.dropout = 0.3;
  model.attach_lora(o, 1);
  testing::randomize_lora_b(model, 2);
  model.set_training(true);
  const auto params = model.lora_parameters();
  const ForwardInput in = rows(29, model.config().vocab_size, 2);
  const TrainStep plain = run_once(model, in, false, params, 5);
  const TrainStep ckpt = run_once(model, in, true, params, 5);
  EXPECT_EQ(plain.loss, ckpt.loss);
  const double err = worst_relative(plain, ckpt);
  std::cout << "LoRA, dropout 0.3: max relative grad difference " << err << "\n";
  EXPECT_LE(err, kGradTolerance);
  // The dropout is real: another seed changes the loss and the gradients.
  const TrainStep other = run_once(model, in, true, params, 6);
  EXPECT_NE(other.loss, plain.loss);
  EXPECT_GT(worst_relative(plain, other), 1e-3);
  // The base weights got no gradient (they do not require it).
  EXPECT_FALSE(model.weights().layers[0].qkv.dense().grad().defined());
}

TEST(ActivationCheckpoint, FlagsOfTheForwardHoldInTheRecompute) {
  // A DPO step runs the policy (adapters on, training), then the reference (adapters off, eval)
  // before the backward: the recompute must still use the policy's settings.
  Phi3Model model = golden_model("mini_tiny");
  LoraOptions o = small_lora();
  o.dropout = 0.2;
  model.attach_lora(o, 3);
  testing::randomize_lora_b(model, 4);
  model.set_training(true);
  const auto params = model.lora_parameters();
  const ForwardInput in = rows(21, model.config().vocab_size, 3);
  const TrainStep plain = run_once(model, in, false, params, 9);
  const TrainStep ckpt = run_once(model, in, true, params, 9, [&] {
    model.set_lora_enabled(false);
    model.set_training(false);
    torch::NoGradGuard no_grad;
    lm_loss(model, in, true);  // the "reference" forward, drawing nothing
    torch::rand({100});        // and some unrelated random draws
  });
  EXPECT_EQ(plain.loss, ckpt.loss);
  EXPECT_LE(worst_relative(plain, ckpt), kGradTolerance);
}

TEST(ActivationCheckpoint, Bf16LoraMatches) {
  Phi3Model model = golden_model("phi4_tiny", torch::kBFloat16);
  model.attach_lora(small_lora(), 1);
  testing::randomize_lora_b(model, 2);
  const auto params = model.lora_parameters();
  const ForwardInput in = rows(17, model.config().vocab_size, 4);
  const TrainStep plain = run_once(model, in, false, params, 0);
  const TrainStep ckpt = run_once(model, in, true, params, 0);
  EXPECT_EQ(plain.loss, ckpt.loss);
  EXPECT_LE(worst_relative(plain, ckpt), 1e-2);  // bf16 activations; measured 0
}

TEST(ActivationCheckpoint, GenericFunctionGradients) {
  torch::manual_seed(0);
  auto x0 = torch::randn({3, 4}, torch::requires_grad());
  auto w1 = torch::randn({4, 5}, torch::requires_grad());
  auto w2 = torch::randn({5});  // no grad
  auto w3 = torch::randn({5}, torch::requires_grad());
  auto fn = [=](const torch::Tensor& x) { return torch::tanh(x.matmul(w1)) * w2 + w3 * x.sum(); };
  auto plain = (fn(x0 * 2) * torch::arange(15).view({3, 5})).sum();
  auto g_plain = torch::autograd::grad({plain}, {x0, w1, w3});
  auto out = checkpoint(fn, x0 * 2, {w1, w2, w3});
  EXPECT_TRUE(out.requires_grad());
  // One node stands for the whole of fn: no graph of its inner ops was kept.
  EXPECT_NE(out.grad_fn()->name().find("CheckpointFunction"), std::string::npos);
  EXPECT_EQ(out.grad_fn()->next_edges().size(), 4u);  // x, w1, w2 (no grad), w3
  auto ck = (out * torch::arange(15).view({3, 5})).sum();
  EXPECT_EQ(plain.item<double>(), ck.item<double>());
  auto g_ck = torch::autograd::grad({ck}, {x0, w1, w3});
  for (size_t i = 0; i < 3; ++i)
    EXPECT_LT(max_abs_diff(g_plain[i], g_ck[i]), 1e-6) << i;
  // Without grad mode it is just fn.
  torch::NoGradGuard no_grad;
  auto out2 = checkpoint(fn, x0, {w1});
  EXPECT_FALSE(out2.requires_grad());
  EXPECT_TRUE(torch::equal(out2, fn(x0)));
}

TEST(ActivationCheckpoint, RandomOpsReplayAndTheStreamContinues) {
  auto w = torch::randn({6, 6}, torch::requires_grad());
  auto fn = [=](const torch::Tensor& x) { return torch::dropout(x.matmul(w), 0.5, true); };
  auto x = torch::randn({4, 6});
  auto grad_with = [&](bool checkpointed, bool preserve) {
    torch::manual_seed(1);
    auto y = checkpointed ? checkpoint(fn, x, {w}, preserve) : fn(x);
    auto g = torch::autograd::grad({y.sum()}, {w})[0];
    return std::make_pair(g, torch::rand({1}).item<double>());  // the next draw after backward
  };
  const auto [g_plain, next_plain] = grad_with(false, true);
  const auto [g_ckpt, next_ckpt] = grad_with(true, true);
  EXPECT_TRUE(torch::equal(g_plain, g_ckpt));
  EXPECT_EQ(next_plain, next_ckpt);  // the recompute did not consume the stream
  // Without saving the generator, the recompute draws other masks: the test can fail.
  const auto [g_fresh, next_fresh] = grad_with(true, false);
  EXPECT_FALSE(torch::equal(g_plain, g_fresh));
}

TEST(ActivationCheckpoint, CudaFullFineTuneAndLoraDropoutMatch) {
  // The CUDA generator's state is replayed too, and RMSNorm falls back from the fused kernel
  // (no backward) to the differentiable reference when a gradient is wanted.
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  Phi3Model model = golden_model("mini_tiny").to(torch::kFloat, torch::kCUDA);
  LoraOptions o = small_lora();
  o.dropout = 0.25;
  model.attach_lora(o, 1);
  testing::randomize_lora_b(model, 2);
  model.set_training(true);
  auto params = model.named_weights();
  for (auto& [n, t] : params)
    t.requires_grad_(true);
  for (const auto& p : model.lora_parameters())
    params.push_back(p);
  ForwardInput in = rows(33, model.config().vocab_size, 5);
  const TrainStep plain = run_once(model, in, false, params, 3);
  const TrainStep ckpt = run_once(model, in, true, params, 3);
  EXPECT_NEAR(plain.loss, ckpt.loss, 1e-6);
  EXPECT_LE(worst_relative(plain, ckpt), 1e-5);  // GPU backward may accumulate in any order
}

}  // namespace
}  // namespace align
