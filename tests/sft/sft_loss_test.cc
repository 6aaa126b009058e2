// The SFT loss over packed, padded and accumulated batches: packing must not leak attention or
// targets across examples, and accumulating micro-batches normalised by the step's target count
// must give the large batch's gradient.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/packing.h"
#include "model/phi3_model.h"
#include "sft/sft_loss.h"
#include "tests/test_util.h"

namespace align {
namespace {

std::vector<SftExample> examples(int64_t vocab) {
  std::vector<SftExample> out;
  uint64_t x = 99;
  for (int64_t len : {7, 5, 9}) {
    SftExample e;
    for (int64_t i = 0; i < len; ++i) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      e.ids.push_back(static_cast<TokenId>((x >> 33) % static_cast<uint64_t>(vocab)));
      e.loss_mask.push_back(i >= 2 ? 1 : 0);  // the first two tokens are "prompt"
    }
    out.push_back(e);
  }
  return out;
}

TrainBatch to_batch(const Batch& b) {
  auto t = [&](const std::vector<int64_t>& v) {
    return torch::tensor(v, torch::kInt64).view({b.rows, b.seq_len});
  };
  return {t(b.tokens), t(b.positions), t(b.segments), t(b.targets), b.num_targets};
}

Phi3Model golden_model() {
  return Phi3Model::load(testing::golden_path("model/phi4_tiny"), torch::kFloat32, torch::kCPU);
}

TEST(SftLoss, PackedRowEqualsTheExamplesRunOneByOne) {
  Phi3Model model = golden_model();
  torch::NoGradGuard no_grad;
  auto ex = examples(model.config().vocab_size);
  const double packed =
      sft_loss_sum(model, to_batch(make_batch({pack_examples(ex, {0, 1, 2})}, 0))).item<double>();
  double separate = 0;
  int64_t targets = 0;
  for (int64_t i = 0; i < 3; ++i) {
    Batch b = make_batch({pack_examples(ex, {i})}, 0);
    separate += sft_loss_sum(model, to_batch(b)).item<double>();
    targets += b.num_targets;
  }
  EXPECT_EQ(targets, 5 + 3 + 7);
  EXPECT_NEAR(packed, separate, 1e-4 * separate);
  // One example per row, padded to the longest: the same sum again.
  Batch padded =
      make_batch({pack_examples(ex, {0}), pack_examples(ex, {1}), pack_examples(ex, {2})}, 0);
  EXPECT_NEAR(sft_loss_sum(model, to_batch(padded)).item<double>(), separate, 1e-4 * separate);
}

TEST(SftLoss, AccumulatedMicroBatchesGiveTheLargeBatchGradient) {
  auto run = [](const std::vector<std::vector<std::vector<int64_t>>>& micro_rows) {
    Phi3Model model = golden_model();
    model.make_weights_owned();
    auto params = named_weights(model.config(), model.weights());
    for (auto& [n, w] : params)
      w.requires_grad_(true);
    auto ex = examples(model.config().vocab_size);
    std::vector<Batch> micro;
    int64_t total = 0;
    for (const auto& rows : micro_rows) {
      std::vector<PackedRow> packed;
      for (const auto& r : rows)
        packed.push_back(pack_examples(ex, r));
      micro.push_back(make_batch(packed, 0));
      total += micro.back().num_targets;
    }
    for (const Batch& b : micro) {
      (sft_loss_sum(model, to_batch(b)) / static_cast<double>(total)).backward();
    }
    std::vector<torch::Tensor> grads;
    for (auto& [n, w] : params)
      grads.push_back(w.grad().clone());
    return grads;
  };
  auto big = run({{{0}, {1}, {2}}});
  auto accumulated = run({{{0}, {1}}, {{2}}});
  auto packed_accumulated = run({{{0, 1}}, {{2}}});
  ASSERT_EQ(big.size(), accumulated.size());
  for (size_t i = 0; i < big.size(); ++i) {
    const double scale = big[i].abs().max().item<double>() + 1e-12;
    EXPECT_LT((big[i] - accumulated[i]).abs().max().item<double>() / scale, 1e-5) << i;
    EXPECT_LT((big[i] - packed_accumulated[i]).abs().max().item<double>() / scale, 1e-5) << i;
  }
}

}  // namespace
}  // namespace align
