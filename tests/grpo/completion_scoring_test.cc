// Scoring sampled completions (grpo/completion_scoring.h): the rollout engine's sampled log-probs
// equal the trainer's forward at temperature 1 on the policy with LoRA applied (what lets
// align grpo take pi_old from the engine instead of a second forward), the entropies and the
// temperature-scaled log-probs equal those of the full logits, and the log-probs carry the
// adapters' gradient.
#include "grpo/completion_scoring.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "rollout/engine.h"
#include "tests/model/model_test_util.h"

namespace align {
namespace {

// The tiny golden model with LoRA adapters whose B is non-zero (so the adapters change the
// forward the engine and the trainer must both apply).
Phi3Model policy() {
  Phi3Model model =
      Phi3Model::load(testing::golden_model_dir("phi4_tiny"), torch::kFloat, torch::kCPU);
  model.make_weights_owned();
  model.attach_lora({4, 8, 0.0, {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}}, 7);
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for (auto& [name, p] : model.lora_parameters())
    p.add_(torch::randn_like(p) * 0.05);
  model.set_training(true);
  return model;
}

struct Sampled {
  std::vector<std::vector<TokenId>> prompts;
  std::vector<GeneratedSample> samples;
  CompletionBatch batch;
};

Sampled sample(const Phi3Model& model) {
  Sampled s;
  std::vector<GenerationRequest> requests;
  for (int64_t p = 0; p < 3; ++p) {
    const auto ids = testing::random_tokens(3 + 2 * p, model.config().vocab_size, 11 + p);
    s.prompts.emplace_back(ids.begin(), ids.end());
    GenerationRequest r;
    r.prompt = s.prompts.back();
    r.num_samples = 4;
    r.max_new_tokens = 10;
    r.stop_token_ids = {2};
    r.sampling.seed = 100 + static_cast<uint64_t>(p);
    requests.push_back(r);
  }
  EngineOptions o;
  o.page_size = 4;
  o.kv_budget_tokens = 1024;
  o.reuse_prefixes = false;
  Engine engine(model, nullptr, o);
  std::vector<const std::vector<TokenId>*> ps, cs;
  const auto results = engine.generate(requests);
  for (size_t p = 0; p < results.size(); ++p)
    for (const GeneratedSample& g : results[p])
      s.samples.push_back(g);
  for (size_t i = 0; i < s.samples.size(); ++i) {
    ps.push_back(&s.prompts[i / 4]);
    cs.push_back(&s.samples[i].tokens);
  }
  s.batch = make_completion_batch(ps, cs, 3);
  return s;
}

TEST(CompletionScoring, EngineLogprobsEqualTheTrainersForwardWithLora) {
  const Phi3Model model = policy();
  const Sampled s = sample(model);
  const CompletionScores scores = score_completions(model, s.batch, 1.0, false);
  ASSERT_TRUE(scores.logps.requires_grad());  // the adapters' gradient flows
  double worst = 0;
  int64_t tokens = 0;
  for (size_t i = 0; i < s.samples.size(); ++i) {
    const GeneratedSample& g = s.samples[i];
    for (size_t t = 0; t < g.tokens.size(); ++t, ++tokens) {
      const double trainer =
          scores.logps.index({static_cast<int64_t>(i), static_cast<int64_t>(t)}).item<double>();
      worst = std::max(worst, std::abs(trainer - g.logprobs[t]));
    }
    // Padding past the completion is 0 with mask 0.
    for (int64_t t = static_cast<int64_t>(g.tokens.size()); t < s.batch.completion_width; ++t) {
      EXPECT_EQ(s.batch.mask.index({static_cast<int64_t>(i), t}).item<float>(), 0.0f);
    }
  }
  EXPECT_GT(tokens, 40);
  EXPECT_LT(worst, 2e-5) << "engine vs trainer log-probs";
  // The adapters matter: without them the log-probs differ.
  Phi3Model base = policy();
  base.set_lora_enabled(false);
  const CompletionScores plain = score_completions(base, s.batch, 1.0, false);
  EXPECT_GT(((plain.logps - scores.logps).abs() * s.batch.mask).max().item<double>(), 1e-3);
}

TEST(CompletionScoring, EntropiesAndTemperatureMatchTheFullLogits) {
  const Phi3Model model = policy();
  const Sampled s = sample(model);
  torch::NoGradGuard no_grad;
  for (double temperature : {1.0, 0.6}) {
    const CompletionScores scores = score_completions(model, s.batch, temperature, true);
    ForwardInput in;
    in.tokens = s.batch.tokens;
    in.valid = s.batch.valid;
    in.logits = LogitsAt::kAll;
    const torch::Tensor logp =
        torch::log_softmax(model.forward(in).logits / temperature, -1);  // [B, T, V]
    const int64_t T = s.batch.tokens.size(1);
    for (int64_t u = 0; u < s.batch.positions.size(0); ++u) {
      const int64_t pos = s.batch.positions[u].item<int64_t>(), b = pos / T, t = pos % T;
      const int64_t slot = s.batch.slots[u].item<int64_t>();
      const int64_t j = slot % s.batch.completion_width;
      const torch::Tensor row = logp.index({b, t});
      EXPECT_NEAR(scores.logps.index({b, j}).item<double>(),
                  row[s.batch.targets[u].item<int64_t>()].item<double>(), 1e-5);
      EXPECT_NEAR(scores.entropies.index({b, j}).item<double>(),
                  -(row.exp() * row).sum().item<double>(), 1e-5);
    }
  }
}

}  // namespace
}  // namespace align
