// SFT -> PTS -> DPO on the toy task (tests/align/toy_task.h), end to end with the real binary:
// DPO on the PTS pairs of six names must raise the log-prob margin of chosen over rejected tokens
// on the held-out pairs of two other names, and must not lower the success rate there.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "eval/query_set.h"
#include "model/logprobs.h"
#include "model/phi3_model.h"
#include "oracles/oracle.h"
#include "rollout/engine.h"
#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::read_jsonl;
using testing::run;

// Mean over pairs of log p(chosen) - log p(rejected) at the pair's prompt.
double mean_margin(const Phi3Model& model, const std::vector<nlohmann::json>& pairs) {
  double total = 0;
  for (const auto& pair : pairs) {
    std::vector<int64_t> ids = pair.at("prompt_token_ids").get<std::vector<int64_t>>();
    double lp[2];
    for (int side = 0; side < 2; ++side) {
      std::vector<int64_t> seq = ids;
      seq.push_back(pair.at(side == 0 ? "chosen_token_id" : "rejected_token_id").get<int64_t>());
      const torch::Tensor tokens = torch::tensor(seq, torch::kInt64).unsqueeze(0);
      lp[side] = token_logprobs(model, tokens)[0][-1].item<double>();
    }
    total += lp[0] - lp[1];
  }
  return total / static_cast<double>(pairs.size());
}

// Success rate of `n` samples per held-out prompt, graded by the toy oracle.
double success_rate(const Phi3Model& model, const Tokenizer& tok, const Oracle& oracle,
                    const std::vector<std::string>& names, int64_t n) {
  std::vector<GenerationRequest> requests;
  for (const std::string& name : names) {
    GenerationRequest r;
    r.prompt = select_chat_format("", tok, ChatFormatKind::kPhi4, "the test")
                   .render({{"user", testing::toy_prompt(name), {}}}, true)
                   .ids;
    r.num_samples = n;
    r.max_new_tokens = 12;
    r.stop_token_ids = {*tok.token_to_id("<|im_end|>")};
    r.sampling.seed = 4242;
    requests.push_back(r);
  }
  Engine engine(model, &tok, {});
  int64_t wins = 0, total = 0;
  for (const auto& samples : engine.generate(requests)) {
    for (const GeneratedSample& s : samples) {
      wins += oracle.grade(completion_text(tok, s.tokens), nlohmann::json::object()) ? 1 : 0;
      ++total;
    }
  }
  return static_cast<double>(wins) / static_cast<double>(total);
}

TEST(DpoOnPtsPairs, RaisesHeldOutMarginsAndDoesNotLowerSuccess) {
  testing::ToyTask task;
  const std::vector<std::string> train_names(testing::toy_names().begin(),
                                             testing::toy_names().begin() + 6);
  const std::vector<std::string> held_out(testing::toy_names().begin() + 6,
                                          testing::toy_names().end());
  std::string out;
  ASSERT_EQ(
      run("pts --config " + task.pts_config("pts-train", task.queries("train", train_names, 2)),
          &out),
      0)
      << out;
  ASSERT_EQ(
      run("pts --config " + task.pts_config("pts-held-out", task.queries("held", held_out)), &out),
      0)
      << out;
  const auto train_pairs = read_jsonl(task.dir.file("pts-train/pairs.jsonl"));
  const auto held_pairs = read_jsonl(task.dir.file("pts-held-out/pairs.jsonl"));
  ASSERT_GE(train_pairs.size(), 6u);
  ASSERT_FALSE(held_pairs.empty());

  const nlohmann::json dpo = {
      {"model", {{"path", task.model}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"reference", {{"type", "lora_base"}}},
      {"data",
       {{"train", task.dir.file("pts-train/pairs.jsonl")},
        {"eval", task.dir.file("pts-held-out/pairs.jsonl")},
        {"format", "token"},
        {"max_seq_len", 128},
        {"batch_size", 4}}},
      // Without the NLL term, token-pair DPO at this learning rate lowers p(chosen) along with
      // p(rejected) (only their difference is constrained) and the tiny model's text degrades;
      // with it (TRL's rpo_alpha = 1) p(chosen) rises and the text stays intact.
      {"dpo", {{"loss", "sigmoid"}, {"beta", 0.1}, {"nll_weight", 1.0}}},
      {"optimizer", {{"lr", 1e-3}}},
      {"schedule", {{"type", "constant"}, {"max_steps", 30}}},
      {"training", {{"eval_every", 15}}},
      {"lora", {{"enabled", true}, {"rank", 8}, {"alpha", 16}, {"dropout", 0.0}}},
      {"output", {{"dir", task.dir.file("dpo")}, {"merge_lora", true}}}};
  testing::write_text(task.dir.file("dpo.json"), dpo.dump(2));
  ASSERT_EQ(run("dpo --config " + task.dir.file("dpo.json"), &out), 0) << out;

  const Tokenizer tok = Tokenizer::load(task.model);
  const auto oracle = make_oracle(task.oracle, "test");
  const Phi3Model before = Phi3Model::load(task.model, torch::kFloat32, torch::kCPU);
  const Phi3Model after =
      Phi3Model::load(task.dir.file("dpo/merged"), torch::kFloat32, torch::kCPU);
  torch::NoGradGuard no_grad;
  const double margin_before = mean_margin(before, held_pairs);
  const double margin_after = mean_margin(after, held_pairs);
  EXPECT_GT(margin_after, margin_before + 0.3)
      << "held-out margin " << margin_before << " -> " << margin_after;
  const double success_before = success_rate(before, tok, *oracle, held_out, 32);
  const double success_after = success_rate(after, tok, *oracle, held_out, 32);
  EXPECT_GE(success_after, success_before)
      << "success " << success_before << " -> " << success_after;
  std::printf("held-out: margin %.3f -> %.3f, success %.3f -> %.3f (%zu train pairs)\n",
              margin_before, margin_after, success_before, success_after, train_pairs.size());

  // The trainer's own eval on the held-out pairs agrees: reward accuracy 1 at the end.
  const auto metrics = read_jsonl(task.dir.file("dpo/metrics.jsonl"));
  double last_eval_accuracy = -1;
  for (const auto& m : metrics)
    if (m.contains("eval_rewards/accuracies"))
      last_eval_accuracy = m.at("eval_rewards/accuracies").get<double>();
  EXPECT_EQ(last_eval_accuracy, 1.0);
}

}  // namespace
}  // namespace align
