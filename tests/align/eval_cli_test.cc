// `align eval` end to end on a real (tiny) model trained on a toy task with a known success rate:
// SFT teaches "I pick left." and "I pick right." half and half; the regex oracle rewards "left", so
// pass@1 is near 0.5 and pass@4 near 1 - 0.5^4. The per-item results must agree with a re-grading
// of their texts, and bad configs are refused naming the key.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>

#include "common/atomic_file.h"
#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::read_jsonl;
using testing::run;
namespace fs = std::filesystem;

// A tiny model fine-tuned on the toy task (about 10 s on one core).
struct ToyTask {
  testing::TempDir dir;
  std::string model = dir.file("sft/model");

  ToyTask() {
    EXPECT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                  " --out " + dir.file("base") + " --seed 3 --dtype fp32"),
              0);
    std::string train;
    for (int i = 0; i < 64; ++i) {
      train +=
          nlohmann::json{
              {"messages",
               {{{"role", "user"}, {"content", "Pick a side."}},
                {{"role", "assistant"}, {"content", i % 2 ? "I pick right." : "I pick left."}}}}}
              .dump() +
          "\n";
    }
    testing::write_text(dir.file("train.jsonl"), train);
    const nlohmann::json sft = {
        {"model", {{"path", dir.file("base")}, {"dtype", "fp32"}, {"device", "cpu"}}},
        {"data", {{"train", dir.file("train.jsonl")}, {"max_seq_len", 128}, {"rows_per_batch", 2}}},
        {"optimizer", {{"lr", 1e-2}}},
        {"schedule", {{"type", "cosine"}, {"warmup_steps", 5}, {"max_steps", 80}}},
        {"training", {{"log_every", 20}}},
        {"output", {{"dir", dir.file("sft")}}}};
    testing::write_text(dir.file("sft.json"), sft.dump());
    EXPECT_EQ(run("sft --config " + dir.file("sft.json")), 0);
  }
};

// An eval config over `items` copies of the prompt, writing into dir/<name>.
std::string eval_config(const testing::TempDir& dir, const std::string& model,
                        const std::string& name, int items, const nlohmann::json& extra = {}) {
  std::string lines;
  for (int i = 0; i < items; ++i)
    lines +=
        nlohmann::json{{"id", "q" + std::to_string(i)}, {"prompt", "Pick a side."}}.dump() + "\n";
  testing::write_text(dir.file(name + "-items.jsonl"), lines);
  nlohmann::json c = {{"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                      {"data", {{"path", dir.file(name + "-items.jsonl")}}},
                      {"oracle", {{"type", "regex"}, {"pattern", "left"}}},
                      {"sampling", {{"max_new_tokens", 12}, {"num_samples", 16}, {"seed", 7}}},
                      {"eval", {{"k", {1, 4}}}},
                      {"output", {{"dir", dir.file(name)}}}};
  if (extra.is_object()) c.merge_patch(extra);
  const std::string path = dir.file(name + ".json");
  testing::write_text(path, c.dump(2));
  return path;
}

TEST(EvalCli, PassAtKOnAToyTaskWithAKnownRate) {
  ToyTask task;
  std::string out;
  ASSERT_EQ(run("eval --config " + eval_config(task.dir, task.model, "eval", 8), &out), 0) << out;
  EXPECT_NE(out.find("8 items x 16 samples"), std::string::npos) << out;
  EXPECT_NE(out.find("pass@k"), std::string::npos) << out;

  const auto summary = nlohmann::json::parse(read_file(task.dir.file("eval/summary.json")));
  EXPECT_EQ(summary.at("items"), 8);
  EXPECT_EQ(summary.at("num_samples"), 16);
  EXPECT_EQ(summary.at("oracle"), "regex");
  const auto& p1 = summary.at("pass@k").at("1");
  const auto& p4 = summary.at("pass@k").at("4");
  const double mean1 = p1.at("mean").get<double>(), mean4 = p4.at("mean").get<double>();
  EXPECT_LE(p1.at("low").get<double>(), mean1);
  EXPECT_GE(p1.at("high").get<double>(), mean1);
  EXPECT_LE(p4.at("low").get<double>(), mean4);
  EXPECT_GE(p4.at("high").get<double>(), mean4);
  // The model learned the 50/50 split only roughly (about 0.45 measured over 1024 samples).
  EXPECT_NEAR(mean1, 0.5, 0.15) << summary.dump();
  EXPECT_GT(mean4, mean1);
  // The items are identical, so E[pass@4] = 1 - (1 - p)^4.
  EXPECT_NEAR(mean4, 1 - std::pow(1 - mean1, 4), 0.08) << summary.dump();
  EXPECT_FALSE(p1.contains("wilson_low"));  // only with one sample per item
  EXPECT_GT(summary.at("mean_tokens").get<double>(), 3.0);
  EXPECT_TRUE(fs::exists(task.dir.file("eval/config.json")));

  // One line per item, in data order; counts and pass@1 agree with a re-grading of the texts.
  const auto results = read_jsonl(task.dir.file("eval/results.jsonl"));
  ASSERT_EQ(results.size(), 8u);
  const std::regex left("left");
  double sum1 = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    EXPECT_EQ(r.at("id"), "q" + std::to_string(i));
    EXPECT_EQ(r.at("n"), 16);
    ASSERT_EQ(r.at("samples").size(), 16u);
    int64_t correct = 0;
    for (const auto& s : r.at("samples")) {
      const bool regraded = std::regex_search(s.at("text").get<std::string>(), left);
      EXPECT_EQ(s.at("success").get<bool>(), regraded) << s.dump();
      EXPECT_FALSE(s.at("token_ids").empty());
      correct += regraded ? 1 : 0;
    }
    EXPECT_EQ(r.at("correct").get<int64_t>(), correct);
    EXPECT_NEAR(r.at("pass@k").at("1").get<double>(), correct / 16.0, 1e-12);
    sum1 += correct / 16.0;
  }
  EXPECT_NEAR(mean1, sum1 / 8, 1e-12);
  // completions/clipped_ratio: the samples that hit max_new_tokens without a stop token, in
  // summary.json and the printed summary.
  double clipped = 0;
  for (const auto& r : results)
    for (const auto& s : r.at("samples"))
      clipped += s.at("finish_reason") == "stop" ? 0 : 1;
  clipped /= 8 * 16;
  EXPECT_DOUBLE_EQ(summary.at("clipped_ratio").get<double>(), clipped) << summary.dump();
  char printed[64];
  std::snprintf(printed, sizeof printed, "(%.1f%% clipped at max_new_tokens)", 100 * clipped);
  EXPECT_NE(out.find(printed), std::string::npos) << out;

  // The same config gives the same results (seeds per item id), whatever the batch size.
  ASSERT_EQ(run("eval --config " +
                eval_config(task.dir, task.model, "again", 8, {{"rollout", {{"max_batch", 20}}}})),
            0);
  EXPECT_EQ(read_file(task.dir.file("eval/results.jsonl")),
            read_file(task.dir.file("again/results.jsonl")));

  // One sample per item: pass@1 also gets a Wilson interval over items, which holds the mean.
  ASSERT_EQ(run("eval --config " +
                    eval_config(task.dir, task.model, "one", 8,
                                {{"sampling", {{"num_samples", 1}}}, {"eval", {{"k", {1}}}}}),
                &out),
            0)
      << out;
  EXPECT_NE(out.find("Wilson over items"), std::string::npos) << out;
  const auto one = nlohmann::json::parse(read_file(task.dir.file("one/summary.json")));
  const auto& w = one.at("pass@k").at("1");
  EXPECT_LE(w.at("wilson_low").get<double>(), w.at("mean").get<double>());
  EXPECT_GE(w.at("wilson_high").get<double>(), w.at("mean").get<double>());
  EXPECT_EQ(read_jsonl(task.dir.file("one/results.jsonl")).size(), 8u);
}

TEST(EvalCli, BadConfigIsNamed) {
  testing::TempDir dir;
  const std::string model = dir.file("no-model");  // config errors come before the model loads
  std::string out;
  EXPECT_EQ(
      run("eval --config " + eval_config(dir, model, "e", 2, {{"sampling", {{"num_samples", 2}}}}),
          &out),
      1);
  EXPECT_NE(out.find("eval.k"), std::string::npos) << out;
  EXPECT_NE(out.find("num_samples"), std::string::npos) << out;
  EXPECT_EQ(
      run("eval --config " + eval_config(dir, model, "e", 2, {{"eval", {{"kk", {1}}}}}), &out), 1);
  EXPECT_NE(out.find("eval.kk"), std::string::npos) << out;
  EXPECT_EQ(
      run("eval --config " + eval_config(dir, model, "e", 2) + " --set sampling.seeds=3", &out), 1);
  EXPECT_NE(out.find("sampling.seeds"), std::string::npos) << out;
  EXPECT_EQ(
      run("eval --config " + eval_config(dir, model, "e", 2, {{"rollout", {{"max_batch", 8}}}}),
          &out),
      1);
  EXPECT_NE(out.find("rollout.max_batch"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(dir.file("e/results.jsonl")));
}

}  // namespace
}  // namespace align
