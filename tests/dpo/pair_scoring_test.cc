// Token-pair chains scored in one forward equal each pair scored on its own; the chain grouping;
// sequence batches equal per-pair scoring; gradient accumulation with the step normalisation
// equals one large batch (tiny golden model, fp32, CPU).
#include "dpo/pair_scoring.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dpo/dpo_loss.h"
#include "tests/test_util.h"
#include "train/named_tensors.h"

namespace align {
namespace {

Phi3Model tiny_model() {
  return Phi3Model::load(testing::golden_path("model/phi4_tiny"), torch::kFloat32, torch::kCPU);
}

std::vector<TokenId> seq(int64_t n, int64_t seed) {
  std::vector<TokenId> out;
  for (int64_t i = 0; i < n; ++i)
    out.push_back(static_cast<TokenId>(5 + (seed * 37 + i * 11) % 300));
  return out;
}

TokenPair pivot(const std::string& q, const std::vector<TokenId>& full, size_t len, TokenId c,
                TokenId r) {
  TokenPair p;
  p.query_id = q;
  p.prompt.assign(full.begin(), full.begin() + static_cast<int64_t>(len));
  p.chosen = c;
  p.rejected = r;
  return p;
}

// Two queries; query "a" has two completions that share the first 4 tokens.
std::vector<TokenPair> pts_pairs() {
  const std::vector<TokenId> a1 = seq(12, 1);
  std::vector<TokenId> a2 = a1;
  for (size_t i = 4; i < a2.size(); ++i)
    a2[i] = static_cast<TokenId>((a2[i] + 7) % 300);
  const std::vector<TokenId> b = seq(7, 2);
  return {pivot("a", a1, 3, 40, 41), pivot("a", a1, 8, 42, 43),  pivot("a", a2, 6, 44, 45),
          pivot("b", b, 7, 46, 47),  pivot("a", a1, 12, 48, 49), pivot("a", a2, 10, 50, 51),
          pivot("a", a1, 8, 52, 53), pivot("b", b, 2, 54, 55)};
}

TEST(PairChains, GroupByPrefixWithinAQuery) {
  const std::vector<TokenPair> pairs = pts_pairs();
  const std::vector<PairChain> chains = build_pair_chains(pairs);
  ASSERT_EQ(chains.size(), 3u);  // a1's chain, a2's chain, b's chain
  EXPECT_EQ(chains[0].tokens, pairs[4].prompt);
  EXPECT_EQ(chains[0].pairs, (std::vector<int64_t>{0, 6, 1, 4}));  // shortest first, ties by file
  EXPECT_EQ(chains[1].tokens, pairs[5].prompt);
  EXPECT_EQ(chains[1].pairs, (std::vector<int64_t>{2, 5}));
  EXPECT_EQ(chains[2].pairs, (std::vector<int64_t>{7, 3}));
}

TEST(PairChains, OneForwardPerChainEqualsEachPairAlone) {
  const Phi3Model model = tiny_model();
  const std::vector<TokenPair> pairs = pts_pairs();
  const std::vector<PairChain> chains = build_pair_chains(pairs);
  const PairBatch together = make_chain_batch(pairs, chains, {0, 1, 2}, 3);
  EXPECT_EQ(together.tokens.size(0), 3);  // three forwards rows for eight pairs
  const PairLogps s = score_pairs(model, together);
  double worst = 0;
  for (int64_t k = 0; k < together.num_pairs; ++k) {
    const int64_t i = together.pair_ids[static_cast<size_t>(k)];
    const std::vector<PairChain> alone = {{pairs[static_cast<size_t>(i)].prompt, {i}}};
    const PairLogps one = score_pairs(model, make_chain_batch(pairs, alone, {0}, 3));
    worst = std::max(worst, (s.chosen[k] - one.chosen[0]).abs().item<double>());
    worst = std::max(worst, (s.rejected[k] - one.rejected[0]).abs().item<double>());
  }
  EXPECT_LT(worst, 1e-5);
  std::cout << "chain vs separate scoring: max abs log-prob diff " << worst << "\n";
}

TEST(PairScoring, PaddedSequenceBatchEqualsEachPairAlone) {
  const Phi3Model model = tiny_model();
  std::vector<PreferencePair> pairs = {{seq(5, 3), seq(4, 4), seq(2, 5), 1.0, {}, {}},
                                       {seq(2, 6), seq(7, 7), seq(3, 8), 1.0, {}, {}},
                                       {seq(9, 9), seq(1, 10), seq(5, 11), 1.0, {}, {}}};
  const PairBatch b = make_sequence_batch(pairs, {0, 1, 2}, 3);
  EXPECT_EQ(b.tokens.sizes(), (std::vector<int64_t>{6, 14}));
  const PairLogps s = score_pairs(model, b, false, /*chunk_tokens=*/5);
  for (int64_t k = 0; k < 3; ++k) {
    const PairLogps one = score_pairs(model, make_sequence_batch(pairs, {k}, 3));
    EXPECT_NEAR(s.chosen[k].item<double>(), one.chosen[0].item<double>(), 1e-4);
    EXPECT_NEAR(s.rejected[k].item<double>(), one.rejected[0].item<double>(), 1e-4);
  }
  EXPECT_EQ(b.chosen_tokens[1].item<float>(), 7.0f);
}

// One optimizer step's gradient from 2 micro-batches (normalised by the step's totals) equals the
// gradient of the 4 pairs in one batch, with weights and the NLL term.
TEST(PairScoring, AccumulatedMicroBatchesEqualOneLargeBatch) {
  std::vector<PreferencePair> pairs;
  for (int64_t i = 0; i < 4; ++i) {
    PreferencePair p{
        seq(3 + i, 20 + i), seq(2 + i % 3, 30 + i), seq(4 - i % 2, 40 + i), 1.0, {}, {}};
    p.weight = 0.5 + static_cast<double>(i);
    p.ref_chosen = -20.0 - static_cast<double>(i);
    p.ref_rejected = -25.0 + static_cast<double>(i);
    pairs.push_back(p);
  }
  const DpoLossOptions opt{DpoLossType::kSigmoid, 0.1, 0.05};
  auto grads = [&](const std::vector<std::vector<int64_t>>& micro) {
    Phi3Model model = tiny_model();
    model.make_weights_owned();
    NamedTensors params = named_weights(model.config(), model.weights());
    for (auto& [n, w] : params)
      w.requires_grad_(true);
    std::vector<PairBatch> batches;
    double weight = 0, tokens = 0;
    for (const auto& m : micro) {
      batches.push_back(make_sequence_batch(pairs, m, 3));
      weight += batches.back().weights.sum().item<double>();
      tokens += batches.back().chosen_tokens.sum().item<double>();
    }
    for (const PairBatch& b : batches) {
      const PairLogps s = score_pairs(model, b);
      const DpoLossOutput out = dpo_loss(opt, s.chosen, s.rejected, b.ref_chosen, b.ref_rejected);
      dpo_step_objective(out.losses, b.weights, weight, s.chosen, 0.3, tokens).backward();
    }
    std::vector<torch::Tensor> g;
    for (auto& [n, w] : params)
      g.push_back(w.grad().clone());
    return g;
  };
  const auto big = grads({{0, 1, 2, 3}});
  const auto accum = grads({{0, 1}, {2, 3}});
  for (size_t i = 0; i < big.size(); ++i) {
    EXPECT_TRUE(torch::allclose(big[i], accum[i], 1e-4, 1e-7)) << i;
  }
}

}  // namespace
}  // namespace align
