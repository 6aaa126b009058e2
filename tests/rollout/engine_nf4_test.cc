// The rollout engine on an NF4-quantised model (QLoRA's storage, model/linear.h), with LoRA on
// top: the same samples as the dense model holding the dequantised weights, and log-probs equal to
// the quantised model's own teacher-forced forward (what PTS and eval rely on).
#include <gtest/gtest.h>

#include <map>

#include "model/logprobs.h"
#include "rollout/engine.h"
#include "tests/model/lora_test_util.h"

namespace align {
namespace {

using testing::random_tokens;

GenerationRequest sampled(const std::vector<int64_t>& prompt, int64_t samples, int64_t max_new,
                          uint64_t seed) {
  GenerationRequest r;
  r.prompt = {prompt.begin(), prompt.end()};
  r.num_samples = samples;
  r.max_new_tokens = max_new;
  r.sampling.temperature = 0.8;
  r.sampling.top_p = 0.9;
  r.sampling.seed = seed;
  return r;
}

TEST(EngineNf4, QuantisedModelSamplesAsItsDequantisedCopyAndScoresAsItsForward) {
  Phi3Model q = Phi3Model::load(testing::golden_model_dir("phi4_tiny"), torch::kFloat, torch::kCPU,
                                Nf4Options{});
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, t] : q.named_weights())
    tensors[name] = t;
  Phi3Model d(q.config(),
              assemble_weights(q.config(), [&](const std::string& n) { return tensors.at(n); }));
  for (Phi3Model* m : {&q, &d}) {
    m->attach_lora(testing::small_lora(), 3);
    testing::randomize_lora_b(*m, 4);
  }
  const int64_t V = q.config().vocab_size;
  const std::vector<GenerationRequest> requests = {sampled(random_tokens(6, V, 1), 3, 10, 5),
                                                   sampled(random_tokens(9, V, 2), 2, 8, 6)};
  EngineOptions options;
  options.page_size = 4;
  options.kv_budget_tokens = 2048;
  Engine eq(q, nullptr, options), ed(d, nullptr, options);
  const auto rq = eq.generate(requests), rd = ed.generate(requests);
  torch::NoGradGuard no_grad;
  for (size_t r = 0; r < requests.size(); ++r) {
    ASSERT_EQ(rq[r].size(), rd[r].size());
    for (size_t s = 0; s < rq[r].size(); ++s) {
      EXPECT_EQ(rq[r][s].tokens, rd[r][s].tokens) << "request " << r << " sample " << s;
      std::vector<int64_t> seq(requests[r].prompt.begin(), requests[r].prompt.end());
      seq.insert(seq.end(), rq[r][s].tokens.begin(), rq[r][s].tokens.end());
      const auto teacher = token_logprobs(q, testing::token_row(seq))[0];
      for (size_t i = 0; i < rq[r][s].tokens.size(); ++i) {
        const auto at = static_cast<int64_t>(requests[r].prompt.size() + i);
        EXPECT_NEAR(rq[r][s].logprobs[i], teacher[at].item<float>(), 1e-4) << r << "/" << s;
      }
    }
  }
}

}  // namespace
}  // namespace align
