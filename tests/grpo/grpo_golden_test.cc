// GRPO parity with TRL's GRPOTrainer 1.16 (tools/golden_grpo.py ->
// tests/golden/grpo/phi4_tiny_grpo.json): for one step on fixed prompts, completions and rewards
// (TRL's generation replaced), per case of loss_type x scale_rewards x importance_sampling_level
// and the special cases (on policy, mask_truncated_completions, top_entropy_quantile,
// temperature, epsilon_high, use_bias_correction_kl), align's advantages, per-token log-probs,
// entropies, ratios, kl, clip flags and per-token loss, the logged metrics, the loss and every
// parameter's gradient (full fine-tuning, fp32, CPU) equal TRL's. TRL left-pads the prompts and
// scores the whole batch; align right-pads (grpo/completion_scoring.h), so this checks the
// batching too.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "grpo/completion_scoring.h"
#include "grpo/generation.h"
#include "grpo/grpo_loss.h"
#include "model/phi3_model.h"
#include "tests/test_util.h"
#include "train/named_tensors.h"

namespace align {
namespace {

using nlohmann::json;

// [B, T] golden rows (or [B, 1]) as a tensor.
torch::Tensor tensor_of(const json& rows) {
  std::vector<torch::Tensor> r;
  for (const json& row : rows)
    r.push_back(torch::tensor(row.get<std::vector<float>>(), torch::kFloat));
  return torch::stack(r);
}

// Largest |a - b| where mask is 1 (a [B, 1] operand broadcasts).
double masked_max_diff(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& mask) {
  return ((a.to(torch::kFloat) - b.to(torch::kFloat)).abs() * mask).max().item<double>();
}

struct Golden {
  json g = json::parse(read_file(testing::golden_path("grpo/phi4_tiny_grpo.json")));
  std::vector<std::vector<TokenId>> prompts, completions;
  int64_t G = g["num_generations"];
  Golden() {
    for (const json& p : g["prompts"])
      prompts.push_back(p.get<std::vector<TokenId>>());
    for (const json& c : g["completions"])
      completions.push_back(c.get<std::vector<TokenId>>());
  }
  bool truncated(size_t i) const { return completions[i].back() != g["eos"].get<TokenId>(); }
};

// The golden rollouts as a generation, finished by align (rewards, advantages, metrics).
Generation golden_generation(const Golden& gold, ScaleRewards scale, std::vector<Query>& queries,
                             std::vector<Reward>& rewards) {
  for (size_t p = 0; p < gold.prompts.size(); ++p)
    queries.push_back({"p" + std::to_string(p), gold.prompts[p], json::object()});
  rewards.resize(2);
  rewards[0].name = "acc";
  rewards[1].name = "fmt";
  Generation gen;
  for (size_t i = 0; i < gold.completions.size(); ++i) {
    Rollout r;
    r.query = static_cast<int64_t>(i) / gold.G;
    r.tokens = gold.completions[i];
    r.logprobs.assign(r.tokens.size(), 0.0f);
    r.truncated = gold.truncated(i);
    r.rewards = {gold.g["rewards"]["acc"][i].get<double>(),
                 gold.g["rewards"]["fmt"][i].get<double>()};
    gen.rollouts.push_back(r);
  }
  GenerationOptions o;
  o.num_generations = gold.G;
  o.reward_weights = gold.g["reward_weights"].get<std::vector<double>>();
  o.scale_rewards = scale;
  finish_generation(gen, queries, rewards, o);
  return gen;
}

TEST(GrpoGolden, MatchesTrlGrpoTrainerPerLossTypeScaleAndLevel) {
  const Golden gold;
  double worst_token = 0, worst_adv = 0, worst_loss = 0, worst_grad = 0;
  for (const json& c : gold.g["cases"]) {
    const double before_token = worst_token, before_adv = worst_adv, before_loss = worst_loss,
                 before_grad = worst_grad;
    worst_token = worst_adv = worst_loss = worst_grad = 0;
    const std::string name = c["name"];
    SCOPED_TRACE(name);
    Phi3Model model =
        Phi3Model::load(testing::golden_path("model/phi4_tiny"), torch::kFloat32, torch::kCPU);
    model.make_weights_owned();
    NamedTensors params = named_weights(model.config(), model.weights());
    for (auto& [n, w] : params)
      w.requires_grad_(true);

    // Rewards, advantages and the generation's metrics.
    const ScaleRewards scale = parse_enum<ScaleRewards>(c["scale_rewards"], "scale_rewards");
    std::vector<Query> queries;
    std::vector<Reward> rewards;
    const Generation gen = golden_generation(gold, scale, queries, rewards);
    const auto want_adv = c["advantages"].get<std::vector<double>>();
    for (size_t i = 0; i < want_adv.size(); ++i) {
      const double d =
          std::abs(gen.advantages.advantages[static_cast<int64_t>(i)].item<double>() - want_adv[i]);
      worst_adv = std::max(worst_adv, d);
      EXPECT_LT(d, 1e-5) << "advantage " << i;
    }
    const json& m = c["metrics"];
    for (const char* key :
         {"reward", "reward_std", "frac_reward_zero_std", "rewards/acc/mean", "rewards/acc/std",
          "rewards/fmt/mean", "rewards/fmt/std", "completions/mean_length",
          "completions/min_length", "completions/max_length", "completions/clipped_ratio",
          "completions/mean_terminated_length", "completions/min_terminated_length",
          "completions/max_terminated_length"}) {
      ASSERT_TRUE(m.contains(key)) << key;
      EXPECT_NEAR(gen.metrics.at(key).get<double>(), m[key].get<double>(), 1e-5) << key;
    }

    // Per-token values of the policy, at the case's temperature.
    std::vector<const std::vector<TokenId>*> ps, cs;
    std::vector<float> keep;
    for (size_t i = 0; i < gold.completions.size(); ++i) {
      ps.push_back(&gold.prompts[i / static_cast<size_t>(gold.G)]);
      cs.push_back(&gold.completions[i]);
      keep.push_back(c.value("mask_truncated_completions", false) && gold.truncated(i) ? 0 : 1);
    }
    const CompletionBatch batch = make_completion_batch(ps, cs, gold.g["pad"]);
    const torch::Tensor mask = batch.mask * torch::tensor(keep).unsqueeze(1);
    EXPECT_TRUE(torch::equal(mask, tensor_of(c["mask"]))) << "loss mask";
    const CompletionScores s = score_completions(model, batch, c["temperature"], true);
    // On the loss mask: TRL leaves masked-out (truncated) completions out of its forward.
    const double d_logps = masked_max_diff(s.logps, tensor_of(c["logps"]), mask);
    const double d_entropy = masked_max_diff(s.entropies, tensor_of(c["entropies"]), mask);
    EXPECT_LT(d_logps, 1e-5);
    EXPECT_LT(d_entropy, 1e-5);

    GrpoLossOptions o;
    o.beta = c["beta"];
    o.epsilon = c["epsilon"];
    o.epsilon_high = c.contains("epsilon_high") ? c["epsilon_high"].get<double>() : o.epsilon;
    o.level = parse_enum<ImportanceSamplingLevel>(c["importance_sampling_level"], "level");
    o.use_bias_correction_kl = c.value("use_bias_correction_kl", true);
    o.top_entropy_quantile = c.value("top_entropy_quantile", 1.0);
    GrpoLossInputs in;
    in.logps = s.logps;
    in.entropies = s.entropies;
    in.advantages = gen.advantages.advantages;
    in.mask = mask;
    if (!c["old_logps"].is_null()) in.old_logps = tensor_of(c["old_logps"]);
    if (!c["ref_logps"].is_null()) in.ref_logps = tensor_of(c["ref_logps"]);
    const GrpoLossOutput out = grpo_loss(o, in);
    const double d_loss = masked_max_diff(out.per_token_loss, tensor_of(c["per_token_loss"]), mask);
    const double d_ratio = masked_max_diff(out.ratio, tensor_of(c["ratio"]), mask);
    EXPECT_LT(d_loss, 1e-5);
    EXPECT_LT(d_ratio, 1e-5);
    double d_kl = 0;
    if (!c["kl"].is_null()) {
      d_kl = masked_max_diff(out.kl, tensor_of(c["kl"]), mask);
      EXPECT_LT(d_kl, 1e-5);
    } else {
      EXPECT_FALSE(out.kl.defined());
    }
    EXPECT_EQ(masked_max_diff(out.low_clipped, tensor_of(c["low_clipped"]), mask), 0.0);
    EXPECT_EQ(masked_max_diff(out.high_clipped, tensor_of(c["high_clipped"]), mask), 0.0);
    worst_token = std::max({worst_token, d_logps, d_entropy, d_loss, d_ratio, d_kl});

    // Metrics (TRL's token means) and the loss of the step (one micro-batch).
    auto mean = [&](const torch::Tensor& v) {
      const auto [sum, n] = masked_sum_count(v, mask);
      return sum / std::max(n, 1.0);
    };
    if (o.beta != 0) {
      EXPECT_NEAR(mean(out.kl), m["kl"].get<double>(), 1e-5);
    }
    EXPECT_NEAR(mean(s.entropies), m["entropy"].get<double>(), 1e-5);
    EXPECT_NEAR(mean(out.low_clipped.to(torch::kFloat)), m["clip_ratio/low_mean"].get<double>(),
                1e-6);
    EXPECT_NEAR(mean(out.high_clipped.to(torch::kFloat)), m["clip_ratio/high_mean"].get<double>(),
                1e-6);
    EXPECT_NEAR(mean(out.low_clipped.logical_or(out.high_clipped).to(torch::kFloat)),
                m["clip_ratio/region_mean"].get<double>(), 1e-6);
    GrpoNormalizer n;
    n.step_tokens = mask.sum().item<double>();
    n.max_completion_length = gold.g["max_completion_length"];
    const torch::Tensor loss = grpo_objective(parse_enum<GrpoLossType>(c["loss_type"], "loss_type"),
                                              out.per_token_loss, mask, n);
    const double want_loss = c["loss"];
    worst_loss = std::max(worst_loss, std::abs(loss.item<double>() - want_loss));
    EXPECT_NEAR(loss.item<double>(), want_loss, 1e-5);

    loss.backward();
    for (const auto& [pname, w] : params) {
      const json& want = c["grads"][pname];
      const torch::Tensor grad = w.grad().flatten();
      const double sum_sq = want["sum_sq"];
      const double err = std::abs((grad * grad).sum().item<double>() - sum_sq) / (sum_sq + 1e-12);
      worst_grad = std::max(worst_grad, err);
      EXPECT_LT(err, 1e-4) << pname;
      const auto first = want["first"].get<std::vector<double>>();
      const double scale_g = std::sqrt(sum_sq / static_cast<double>(grad.numel())) + 1e-12;
      for (size_t i = 0; i < first.size(); ++i) {
        EXPECT_LT(std::abs(grad[static_cast<int64_t>(i)].item<double>() - first[i]) / scale_g, 1e-3)
            << pname << "[" << i << "]";
      }
    }
    std::printf("  %-24s per-token %.2e  advantages %.2e  loss %.2e  grad %.2e\n", name.c_str(),
                worst_token, worst_adv, worst_loss, worst_grad);
    worst_token = std::max(worst_token, before_token);
    worst_adv = std::max(worst_adv, before_adv);
    worst_loss = std::max(worst_loss, before_loss);
    worst_grad = std::max(worst_grad, before_grad);
  }
  std::cout << "measured vs TRL GRPOTrainer over " << gold.g["cases"].size()
            << " cases: worst per-token abs err " << worst_token << ", advantages " << worst_adv
            << ", loss " << worst_loss << ", per-tensor grad sum-of-squares rel err " << worst_grad
            << "\n";
}

}  // namespace
}  // namespace align
