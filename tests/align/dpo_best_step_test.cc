// align dpo with a held-out generation eval (eval.queries): the policy is sampled and graded at the
// start, every eval.every steps and at the end; the run returns the best step's weights. On the toy
// task (tests/align/toy_task.h) DPO on PTS pairs teaches "left"; graded by an oracle that rewards
// "right" instead, every DPO step can only lower pass@1, so the best step is the start and the
// result must be the starting model exactly, whatever output.keep_last removed.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <utility>

#include "common/atomic_file.h"
#include "model/checkpoint.h"
#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::read_jsonl;
using testing::run;
namespace fs = std::filesystem;

struct HeldOutTask {
  testing::ToyTask task;
  std::string pairs;
  std::string held_out;

  HeldOutTask() {
    const std::vector<std::string> train(testing::toy_names().begin(),
                                         testing::toy_names().begin() + 6);
    const std::vector<std::string> held(testing::toy_names().begin() + 6,
                                        testing::toy_names().end());
    std::string out;
    EXPECT_EQ(run("pts --config " + task.pts_config("pts", task.queries("train", train, 2)), &out),
              0)
        << out;
    pairs = task.dir.file("pts/pairs.jsonl");
    held_out = task.queries("held", held, 2);
  }

  // A DPO config on the PTS pairs with the held-out eval graded by `oracle_pattern`.
  std::string config(const std::string& name, const std::string& oracle_pattern,
                     const nlohmann::json& extra = nlohmann::json::object()) {
    nlohmann::json c = {
        {"model", {{"path", task.model}, {"dtype", "fp32"}, {"device", "cpu"}}},
        {"reference", {{"type", "lora_base"}}},
        {"data", {{"train", pairs}, {"format", "token"}, {"max_seq_len", 128}, {"batch_size", 4}}},
        {"dpo", {{"beta", 0.1}, {"nll_weight", 1.0}}},
        {"optimizer", {{"lr", 1e-2}}},
        {"schedule", {{"type", "constant"}, {"max_steps", 30}}},
        {"training", {{"log_every", 10}}},
        {"lora", {{"enabled", true}, {"rank", 8}, {"alpha", 16}, {"dropout", 0.0}}},
        {"eval",
         {{"queries", held_out},
          {"oracle", {{"type", "regex"}, {"pattern", oracle_pattern}}},
          {"every", 10},
          {"sampling", {{"max_new_tokens", 12}, {"num_samples", 16}, {"seed", 7}}}}},
        {"output",
         {{"dir", task.dir.file(name)},
          {"save_every", 1000},
          {"keep_last", 1},
          {"merge_lora", true}}}};
    c.merge_patch(extra);
    const std::string path = task.dir.file(name + ".json");
    testing::write_text(path, c.dump(2));
    return path;
  }
};

bool same_tensors(const std::string& a, const std::string& b) {
  const Checkpoint x = Checkpoint::open(a), y = Checkpoint::open(b);
  if (x.names() != y.names()) return false;
  for (const std::string& name : x.names()) {
    const torch::Tensor tx = x.get(name, torch::kFloat32, torch::kCPU);
    const torch::Tensor ty = y.get(name, torch::kFloat32, torch::kCPU);
    if (!torch::equal(tx, ty)) return false;
  }
  return true;
}

TEST(DpoBestStep, ReturnsTheStartWhenEveryStepIsWorseAndSaysSo) {
  HeldOutTask t;
  std::string out;
  ASSERT_EQ(run("dpo --config " + t.config("hurt", "right"), &out), 0) << out;
  const std::string dir = t.task.dir.file("hurt");
  const nlohmann::json best = nlohmann::json::parse(read_file(dir + "/best.json"));
  ASSERT_EQ(best.at("evals").size(), 4u) << best.dump();  // steps 0, 10, 20, 30
  const double start = best["evals"][0]["value"].get<double>();
  const double last = best["evals"][3]["value"].get<double>();
  EXPECT_LT(last, start) << best.dump();  // DPO towards "left" lowers the "right" rate
  EXPECT_EQ(best.at("step").get<int64_t>(), 0) << best.dump();
  EXPECT_TRUE(best.at("kept").get<bool>());
  EXPECT_EQ(best.at("last_step").get<int64_t>(), 30);
  EXPECT_NE(out.find("dpo: step 0 kept: pass@1"), std::string::npos) << out;
  EXPECT_NE(out.find("(the weights of step 0)"), std::string::npos) << out;
  // The step-0 checkpoint outlived keep_last 1, and the merged result is the starting model.
  EXPECT_TRUE(fs::exists(dir + "/checkpoints/step-00000000"));
  EXPECT_TRUE(same_tensors(dir + "/merged", t.task.model));
  // Each eval's outputs are align eval's, and the log has the metric at each eval step.
  for (const char* step : {"step-00000000", "step-00000010", "step-00000020", "step-00000030"}) {
    const std::string e = dir + "/evals/" + step;
    const nlohmann::json summary = nlohmann::json::parse(read_file(e + "/summary.json"));
    EXPECT_EQ(summary.at("items").get<int64_t>(), 4) << e;
    EXPECT_EQ(read_jsonl(e + "/results.jsonl").size(), 4u) << e;
  }
  const std::vector<nlohmann::json> metrics = read_jsonl(dir + "/metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics.front().at("step").get<int64_t>(), 0);
  EXPECT_DOUBLE_EQ(metrics.front().at("eval_pass@1").get<double>(), start);
  EXPECT_DOUBLE_EQ(metrics.back().at("eval_pass@1").get<double>(), last);

  // keep_best false: the same evals, but the result is the last step's.
  ASSERT_EQ(
      run("dpo --config " + t.config("last", "right", {{"eval", {{"keep_best", false}}}}), &out), 0)
      << out;
  const nlohmann::json kept_last =
      nlohmann::json::parse(read_file(t.task.dir.file("last/best.json")));
  EXPECT_FALSE(kept_last.at("kept").get<bool>());
  EXPECT_EQ(kept_last.at("evals"), best.at("evals"));  // the same run up to the result
  EXPECT_FALSE(same_tensors(t.task.dir.file("last/merged"), t.task.model));
}

// Killed after step 20 (a run of 20 steps) and resumed to 30: the same evals, the same best and
// the same result as one run of 30 steps.
TEST(DpoBestStep, ResumeContinuesTheRecordOfEvals) {
  HeldOutTask t;
  std::string out;
  ASSERT_EQ(run("dpo --config " + t.config("whole", "left"), &out), 0) << out;
  const std::string part = t.config("part", "left");
  ASSERT_EQ(run("dpo --config " + part + " --set schedule.max_steps=20", &out), 0) << out;
  ASSERT_EQ(run("dpo --config " + part + " --resume", &out), 0) << out;
  const nlohmann::json whole = nlohmann::json::parse(read_file(t.task.dir.file("whole/best.json")));
  const nlohmann::json resumed =
      nlohmann::json::parse(read_file(t.task.dir.file("part/best.json")));
  EXPECT_EQ(resumed.at("evals"), whole.at("evals")) << resumed.dump() << "\n" << whole.dump();
  EXPECT_EQ(resumed.at("step"), whole.at("step"));
  EXPECT_TRUE(same_tensors(t.task.dir.file("part/merged"), t.task.dir.file("whole/merged")));
}

// completions/clipped_ratio of an eval, derived from its results.jsonl: samples that did not end
// with a stop token over all samples; and the mean generated tokens per sample.
std::pair<double, double> clipped_and_length(const std::string& results) {
  double samples = 0, clipped = 0, tokens = 0;
  for (const nlohmann::json& item : read_jsonl(results)) {
    for (const nlohmann::json& s : item.at("samples")) {
      samples += 1;
      clipped += s.at("finish_reason").get<std::string>() == "stop" ? 0 : 1;
      tokens += static_cast<double>(s.at("token_ids").size());
    }
  }
  return {clipped / samples, tokens / samples};
}

// Issue 25's broken stop, on purpose: the chosen answers repeat "I pick left." past
// max_new_tokens, so DPO raises pass@1 (the regex finds "left" in text that never stops) while the
// samples stop ending. The metrics show it as eval_completions/clipped_ratio, and
// eval.max_clipped_ratio keeps those steps from being the result.
TEST(DpoBestStep, MaxClippedRatioPassesOverStepsThatStopEnding) {
  testing::ToyTask task;
  std::string pairs;
  for (const std::string& name : testing::toy_names()) {
    const nlohmann::json user = {{"role", "user"}, {"content", testing::toy_prompt(name)}};
    auto answer = [](const std::string& text) {
      return nlohmann::json::array({{{"role", "assistant"}, {"content", text}}});
    };
    pairs +=
        nlohmann::json{{"prompt", nlohmann::json::array({user})},
                       {"chosen", answer("I pick left. I pick left. I pick left. I pick left.")},
                       {"rejected", answer("I pick right.")}}
            .dump() +
        "\n";
  }
  testing::write_text(task.dir.file("pairs.jsonl"), pairs);
  const std::vector<std::string> held(testing::toy_names().begin() + 6, testing::toy_names().end());
  const nlohmann::json config = {
      {"model", {{"path", task.model}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"data", {{"train", task.dir.file("pairs.jsonl")}, {"max_seq_len", 128}, {"batch_size", 4}}},
      {"dpo", {{"beta", 0.1}, {"nll_weight", 1.0}}},
      {"optimizer", {{"lr", 1e-2}}},
      {"schedule", {{"type", "constant"}, {"max_steps", 30}}},
      {"training", {{"log_every", 10}}},
      {"lora", {{"enabled", true}, {"rank", 8}, {"alpha", 16}, {"dropout", 0.0}}},
      {"eval",
       {{"queries", task.queries("held", held, 2)},
        {"oracle", {{"type", "regex"}, {"pattern", "left"}}},
        {"every", 10},
        {"max_clipped_ratio", 0.5},
        {"sampling", {{"max_new_tokens", 12}, {"num_samples", 16}, {"seed", 7}}}}},
      {"output", {{"dir", task.dir.file("dpo")}, {"save_every", 1000}, {"keep_last", 1}}}};
  testing::write_text(task.dir.file("dpo.json"), config.dump(2));
  std::string out;
  ASSERT_EQ(run("dpo --config " + task.dir.file("dpo.json"), &out), 0) << out;
  const std::string dir = task.dir.file("dpo");

  // Each eval's clipped_ratio and mean length, as derived from its samples, in summary.json,
  // metrics.jsonl and best.json.
  const nlohmann::json best = nlohmann::json::parse(read_file(dir + "/best.json"));
  ASSERT_EQ(best.at("evals").size(), 4u) << best.dump();  // steps 0, 10, 20, 30
  std::map<int64_t, nlohmann::json> logged;
  for (const nlohmann::json& m : read_jsonl(dir + "/metrics.jsonl"))
    if (m.contains("eval_pass@1")) logged[m.at("step").get<int64_t>()] = m;
  for (const nlohmann::json& e : best.at("evals")) {
    const int64_t step = e.at("step").get<int64_t>();
    char name[32];
    std::snprintf(name, sizeof name, "step-%08lld", static_cast<long long>(step));
    const std::string at = dir + "/evals/" + name;
    const auto [clipped, length] = clipped_and_length(at + "/results.jsonl");
    const nlohmann::json summary = nlohmann::json::parse(read_file(at + "/summary.json"));
    EXPECT_DOUBLE_EQ(summary.at("clipped_ratio").get<double>(), clipped) << at;
    EXPECT_DOUBLE_EQ(e.at("clipped_ratio").get<double>(), clipped) << at;
    EXPECT_EQ(e.at("eligible").get<bool>(), clipped <= 0.5) << at;
    ASSERT_TRUE(logged.count(step)) << "no eval line for step " << step;
    EXPECT_DOUBLE_EQ(logged[step].at("eval_completions/clipped_ratio").get<double>(), clipped);
    EXPECT_NEAR(logged[step].at("eval_completions/mean_length").get<double>(), length, 1e-9);
  }
  // The start ends its answers; DPO teaches it not to, and pass@1 rises all the same.
  const nlohmann::json& start = best["evals"][0];
  const nlohmann::json& last = best["evals"][3];
  EXPECT_LE(start.at("clipped_ratio").get<double>(), 0.5) << best.dump();
  EXPECT_GT(last.at("clipped_ratio").get<double>(), 0.5) << best.dump();
  EXPECT_GT(last.at("value").get<double>(), start.at("value").get<double>()) << best.dump();

  // The kept step is the best of those within the limit, though a clipped one scored higher.
  double best_eligible = -1, best_any = -1;
  for (const nlohmann::json& e : best.at("evals")) {
    best_any = std::max(best_any, e.at("value").get<double>());
    if (e.at("eligible").get<bool>())
      best_eligible = std::max(best_eligible, e.at("value").get<double>());
  }
  EXPECT_LT(best_eligible, best_any) << best.dump();
  EXPECT_EQ(best.at("value").get<double>(), best_eligible) << best.dump();
  EXPECT_LE(best.at("clipped_ratio").get<double>(), 0.5) << best.dump();
  EXPECT_NE(best.at("step").get<int64_t>(), 30) << best.dump();
  EXPECT_NE(out.find("dpo: step 30 held-out pass@1"), std::string::npos) << out;
  EXPECT_NE(out.find("> eval.max_clipped_ratio 0.5: not eligible as best"), std::string::npos)
      << out;
  EXPECT_NE(out.find("passed over for completions/clipped_ratio above 0.5: "), std::string::npos)
      << out;
}

TEST(DpoBestStep, EvalSectionErrorsNameTheKey) {
  HeldOutTask t;
  std::string out;
  EXPECT_NE(
      run("dpo --config " + t.config("bad", "left", {{"eval", {{"metric", "pass@2"}}}}), &out), 0);
  EXPECT_NE(out.find("eval.metric: pass@2 is not one of pass@1"), std::string::npos) << out;
  EXPECT_NE(
      run("dpo --config " + t.config("bad2", "left", {{"eval", {{"oracle", nullptr}}}}), &out), 0);
  EXPECT_NE(out.find("eval.oracle"), std::string::npos) << out;
  EXPECT_NE(
      run("dpo --config " + t.config("bad3", "left", {{"eval", {{"sampling", {{"top_p", 0}}}}}}),
          &out),
      0);
  EXPECT_NE(out.find("eval.sampling.top_p"), std::string::npos) << out;
  EXPECT_NE(
      run("dpo --config " + t.config("bad4", "left", {{"eval", {{"max_clipped_ratio", 1.5}}}}),
          &out),
      0);
  EXPECT_NE(out.find("eval.max_clipped_ratio"), std::string::npos) << out;
}

}  // namespace
}  // namespace align
