// DPO parity with a reference written from the formulas with transformers (tools/golden_dpo.py ->
// tests/golden/dpo/phi4_tiny_losses.json): per loss type, on a fixed batch of the tiny golden
// model, the loss, the rewards and every parameter's gradient (full fine-tuning, fp32, CPU). The
// reference scores each sequence on its own; align scores the batch padded (sequence pairs) or as
// prefix chains (token pairs), so this checks the batching too.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "dpo/dpo_loss.h"
#include "dpo/pair_scoring.h"
#include "model/phi3_model.h"
#include "tests/test_util.h"
#include "train/named_tensors.h"

namespace align {
namespace {

using nlohmann::json;

double rel_err(double got, double want) {
  return std::abs(got - want) / (std::abs(want) + 1e-6);
}

std::vector<TokenId> ids(const json& j) {
  return j.get<std::vector<TokenId>>();
}

// The case's batch, with the golden's reference log-probs and weights attached.
PairBatch golden_batch(const json& g, const json& c) {
  std::vector<double> w;
  if (c.contains("weights")) w = c["weights"].get<std::vector<double>>();
  if (c["data"] == "sequence") {
    std::vector<PreferencePair> pairs;
    std::vector<int64_t> idx;
    for (const auto& p : g["sequence_pairs"]) {
      PreferencePair q{ids(p["prompt"]), ids(p["chosen"]), ids(p["rejected"]), 1.0, {}, {}};
      q.weight = w.empty() ? 1.0 : w[pairs.size()];
      q.ref_chosen = p["ref_chosen"].get<double>();
      q.ref_rejected = p["ref_rejected"].get<double>();
      idx.push_back(static_cast<int64_t>(pairs.size()));
      pairs.push_back(q);
    }
    return make_sequence_batch(pairs, idx, 3);
  }
  std::vector<TokenPair> pairs;
  for (const auto& p : g["token_pairs"]) {
    TokenPair q;
    q.query_id = p["query_id"];
    q.prompt = ids(p["prompt"]);
    q.chosen = p["chosen"];
    q.rejected = p["rejected"];
    q.weight = w.empty() ? 1.0 : w[pairs.size()];
    q.ref_chosen = p["ref_chosen"].get<double>();
    q.ref_rejected = p["ref_rejected"].get<double>();
    pairs.push_back(q);
  }
  const std::vector<PairChain> chains = build_pair_chains(pairs);
  EXPECT_EQ(chains.size(), 2u);  // the three pivots of query "a" share one forward
  return make_chain_batch(pairs, chains, {0, 1}, 3);  // pairs in chain order (pair_ids)
}

TEST(DpoGolden, LossRewardsAndGradientsMatchTransformersPerLossType) {
  const json g = json::parse(read_file(testing::golden_path("dpo/phi4_tiny_losses.json")));
  double worst_loss = 0, worst_grad = 0;
  for (const json& c : g["cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    Phi3Model model =
        Phi3Model::load(testing::golden_path("model/phi4_tiny"), torch::kFloat32, torch::kCPU);
    model.make_weights_owned();
    NamedTensors params = named_weights(model.config(), model.weights());
    for (auto& [name, w] : params)
      w.requires_grad_(true);

    const PairBatch b = golden_batch(g, c);
    const DpoLossOptions opt{parse_enum<DpoLossType>(c["loss"], "loss"), c["beta"].get<double>(),
                             c.value("label_smoothing", 0.0)};
    const PairLogps s = score_pairs(model, b);
    torch::Tensor pc = s.chosen, pr = s.rejected, rc = b.ref_chosen, rr = b.ref_rejected;
    if (opt.type == DpoLossType::kIpo) {
      pc = pc / b.chosen_tokens, pr = pr / b.rejected_tokens;
      rc = rc / b.chosen_tokens, rr = rr / b.rejected_tokens;
    }
    const DpoLossOutput out = dpo_loss(opt, pc, pr, rc, rr);
    const torch::Tensor loss =
        dpo_step_objective(out.losses, b.weights, b.weights.sum().item<double>(), s.chosen,
                           c.value("nll_weight", 0.0), b.chosen_tokens.sum().item<double>());
    // Per-pair values: the golden is in file order, the batch in chain order (pair_ids).
    const auto want_losses = c["losses"].get<std::vector<double>>();
    const auto want_cr = c["chosen_rewards"].get<std::vector<double>>();
    for (int64_t k = 0; k < b.num_pairs; ++k) {
      const size_t i = static_cast<size_t>(b.pair_ids[static_cast<size_t>(k)]);
      EXPECT_NEAR(out.losses[k].item<double>(), want_losses[i],
                  1e-5 * (1 + std::abs(want_losses[i])));
      EXPECT_NEAR(out.chosen_rewards[k].item<double>(), want_cr[i], 1e-5);
    }
    worst_loss = std::max(worst_loss, rel_err(loss.item<double>(), c["objective"]));
    EXPECT_LT(rel_err(loss.item<double>(), c["objective"]), 1e-5);

    loss.backward();
    for (const auto& [name, w] : params) {
      const json& want = c["grads"][name];
      const torch::Tensor grad = w.grad().flatten();
      const double sum_sq = want["sum_sq"];
      if (sum_sq == 0) {
        EXPECT_EQ(grad.abs().max().item<double>(), 0.0) << name;
        continue;
      }
      const double err = rel_err((grad * grad).sum().item<double>(), sum_sq);
      worst_grad = std::max(worst_grad, err);
      EXPECT_LT(err, 1e-4) << name;
      const auto first = want["first"].get<std::vector<double>>();
      const double scale = std::sqrt(sum_sq / static_cast<double>(grad.numel()));
      for (size_t i = 0; i < first.size(); ++i) {
        EXPECT_LT(std::abs(grad[static_cast<int64_t>(i)].item<double>() - first[i]) / scale, 1e-3)
            << name << "[" << i << "]";
      }
    }
  }
  std::cout << "measured vs transformers over " << g["cases"].size()
            << " cases: worst loss rel err " << worst_loss
            << ", worst per-tensor grad sum-of-squares rel err " << worst_grad << "\n";
}

}  // namespace
}  // namespace align
