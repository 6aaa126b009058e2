// `align pipeline` end to end on the toy task (tests/align/toy_task.h): SFT from a random model,
// eval, PTS, DPO on the pairs, eval again; a rerun skips finished stages, a changed stage is redone
// with everything after it; config errors name the section and key.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "tests/align/cli_runner.h"
#include "tests/align/toy_task.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::run;
namespace fs = std::filesystem;

std::string pipeline_config(testing::ToyTask& task,
                            const nlohmann::json& extra = nlohmann::json::object()) {
  const std::vector<std::string> train(testing::toy_names().begin(),
                                       testing::toy_names().begin() + 6);
  const std::vector<std::string> held(testing::toy_names().begin() + 6, testing::toy_names().end());
  nlohmann::json c = {
      {"run_dir", task.dir.file("run")},
      {"model", {{"path", task.dir.file("base")}, {"dtype", "fp32"}, {"device", "cpu"}}},
      {"oracle", task.oracle},
      {"sft",
       {{"data",
         {{"train", task.dir.file("train.jsonl")}, {"max_seq_len", 128}, {"rows_per_batch", 2}}},
        {"optimizer", {{"lr", 1e-2}}},
        {"schedule", {{"type", "cosine"}, {"warmup_steps", 5}, {"max_steps", 80}}},
        {"training", {{"log_every", 20}}}}},
      {"eval",
       {{"data", {{"path", task.queries("held", held)}}},
        {"sampling", {{"max_new_tokens", 12}, {"num_samples", 32}}},
        {"eval", {{"k", {1, 4}}}}}},
      {"pts",
       {{"data", {{"path", task.queries("train", train, 2)}}},
        {"sampling", {{"max_new_tokens", 12}}},
        {"pts",
         {{"completions_per_query", 2},
          {"min_rollouts", 16},
          {"max_rollouts", 64},
          {"queries_per_batch", 4},
          {"seed", 5}}}}},
      {"dpo",
       {{"reference", {{"type", "lora_base"}}},
        {"data", {{"max_seq_len", 128}, {"batch_size", 4}}},
        {"dpo", {{"beta", 0.1}, {"nll_weight", 1.0}}},
        {"optimizer", {{"lr", 1e-3}}},
        {"schedule", {{"type", "constant"}, {"max_steps", 30}}},
        {"lora", {{"enabled", true}, {"rank", 8}, {"alpha", 16}, {"dropout", 0.0}}}}}};
  c.merge_patch(extra);
  const std::string path = task.dir.file("pipeline.json");
  testing::write_text(path, c.dump(2));
  return path;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1))
    ++n;
  return n;
}

TEST(PipelineCli, RunsEveryStageThenSkipsOrRedoesThem) {
  testing::ToyTask task(/*train=*/false);
  // DPO's step chosen on a dev set of its own, graded by the pipeline's oracle.
  const std::vector<std::string> dev(testing::toy_names().begin() + 6, testing::toy_names().end());
  const std::string config =
      pipeline_config(task, {{"dpo",
                              {{"eval",
                                {{"queries", task.queries("dev", dev, 2)},
                                 {"every", 10},
                                 {"sampling", {{"max_new_tokens", 12}, {"num_samples", 8}}}}}}}});
  std::string out;
  ASSERT_EQ(run("pipeline --config " + config, &out), 0) << out;
  EXPECT_EQ(count(out, "pipeline: running"), 5u) << out;
  EXPECT_NE(out.find("| pass@1 |"), std::string::npos) << out;
  const nlohmann::json summary =
      nlohmann::json::parse(read_file(task.dir.file("run/summary.json")));
  ASSERT_EQ(summary.at("stages").size(), 5u);
  EXPECT_GT(summary.at("pairs").get<int64_t>(), 0);
  const double before = summary["eval"]["before"]["pass@k"]["1"]["mean"].get<double>();
  const double after = summary["eval"]["after"]["pass@k"]["1"]["mean"].get<double>();
  EXPECT_GE(after, before) << out;
  EXPECT_TRUE(fs::exists(task.dir.file("run/sft/model/config.json")));   // full fine-tuning
  EXPECT_TRUE(fs::exists(task.dir.file("run/dpo/merged/config.json")));  // LoRA, merged
  const nlohmann::json best = nlohmann::json::parse(read_file(task.dir.file("run/dpo/best.json")));
  EXPECT_EQ(best.at("evals").size(), 4u) << best.dump();  // steps 0, 10, 20, 30
  EXPECT_TRUE(best.at("kept").get<bool>());
  EXPECT_NE(out.find("dpo: step " + std::to_string(best.at("step").get<int64_t>()) + " kept"),
            std::string::npos)
      << out;

  ASSERT_EQ(run("pipeline --config " + config, &out), 0) << out;
  EXPECT_EQ(count(out, "pipeline: skipping finished"), 5u) << out;

  ASSERT_EQ(run("pipeline --config " + config + " --set dpo.dpo.beta=0.2", &out), 0) << out;
  EXPECT_EQ(count(out, "pipeline: skipping finished"), 3u) << out;
  EXPECT_NE(out.find("pipeline: redoing changed dpo"), std::string::npos) << out;
  EXPECT_NE(out.find("pipeline: redoing changed eval-after"), std::string::npos) << out;

  // Same config, but the held-out file changed on disk: eval-before and what follows it redo.
  const std::string held = task.dir.file("held-queries.jsonl");
  testing::write_text(
      held, read_file(held) +
                nlohmann::json{{"id", "extra"}, {"prompt", testing::toy_prompt("Ann")}}.dump() +
                "\n");
  ASSERT_EQ(run("pipeline --config " + config + " --set dpo.dpo.beta=0.2", &out), 0) << out;
  EXPECT_NE(out.find("pipeline: skipping finished sft"), std::string::npos) << out;
  EXPECT_NE(out.find("pipeline: redoing changed eval-before"), std::string::npos) << out;
  const nlohmann::json again = nlohmann::json::parse(read_file(task.dir.file("run/summary.json")));
  EXPECT_EQ(again["eval"]["before"]["items"].get<int64_t>(), 3);  // Gus, Hal + the extra line
}

TEST(PipelineCli, ConfigErrorsNameTheSectionAndKey) {
  testing::ToyTask task(/*train=*/false);
  std::string out;
  EXPECT_EQ(
      run("pipeline --config " + pipeline_config(task, {{"sft", {{"optimizer", {{"lrr", 1}}}}}}),
          &out),
      1);
  EXPECT_NE(out.find("(section sft)"), std::string::npos) << out;
  EXPECT_NE(out.find("sft.optimizer.lrr (did you mean sft.optimizer.lr?)"), std::string::npos)
      << out;
  // A stage's key given without its command section: the message names the full dotted path.
  EXPECT_EQ(run("pipeline --config " + pipeline_config(task) + " --set pts.p_gap=0.3", &out), 1);
  EXPECT_NE(out.find("unknown config key pts.p_gap (did you mean pts.pts.p_gap?)"),
            std::string::npos)
      << out;
  EXPECT_EQ(run("pipeline --config " + pipeline_config(task, {{"stages", {"sft", "rlhf"}}}), &out),
            1);
  EXPECT_NE(out.find("unknown stage rlhf"), std::string::npos) << out;
  // The held-out eval of DPO grades with the top-level oracle, and choosing its step on the set
  // eval-after reports is flagged.
  EXPECT_EQ(run("pipeline --config " +
                    pipeline_config(task, {{"dpo", {{"eval", {{"oracle", {{"type", "exact"}}}}}}}}),
                &out),
            1);
  EXPECT_NE(out.find("dpo.eval.oracle: the held-out eval of dpo uses the top-level oracle"),
            std::string::npos)
      << out;
  EXPECT_EQ(
      run("pipeline --config " +
              pipeline_config(
                  task, {{"dpo", {{"eval", {{"queries", task.dir.file("held-queries.jsonl")}}}}}}) +
              " --check",
          &out),
      0)
      << out;
  EXPECT_NE(out.find("warning: dpo.eval.queries is the eval stages' data.path"), std::string::npos)
      << out;
  EXPECT_EQ(run("pipeline --config " + pipeline_config(task, {{"extra", 1}}), &out), 1);
  EXPECT_NE(out.find("unknown key extra"), std::string::npos) << out;
}

}  // namespace
}  // namespace align
