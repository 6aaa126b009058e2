// align dpo with a held-out generation eval (eval.queries): the policy is sampled and graded at the
// start, every eval.every steps and at the end; the run returns the best step's weights. On the toy
// task (tests/align/toy_task.h) DPO on PTS pairs teaches "left"; graded by an oracle that rewards
// "right" instead, every DPO step can only lower pass@1, so the best step is the start and the
// result must be the starting model exactly, whatever output.keep_last removed.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

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
}

}  // namespace
}  // namespace align
