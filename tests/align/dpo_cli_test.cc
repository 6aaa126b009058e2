// `align dpo` end to end on the tiny model: sequence and token pairs with TRL's metric names and a
// PEFT adapter; --resume from an earlier checkpoint ends with the same adapter and metrics;
// accumulation equals the large batch; precomputed reference log-probs written, used and checked;
// config errors name the key; --help says when to use the held-out eval.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
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

struct DpoFixture {
  testing::TempDir dir;
  std::string model = dir.file("model");
  DpoFixture() {
    EXPECT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                  " --out " + model + " --seed 1 --dtype fp32"),
              0);
  }
  std::string config(const std::string& name, const nlohmann::json& extra = {}) {
    nlohmann::json c = {
        {"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
        {"data",
         {{"train", testing::source_path("examples/dpo/token_train.jsonl")},
          {"eval", testing::source_path("examples/dpo/token_eval.jsonl")},
          {"format", "token"},
          {"max_seq_len", 256},
          {"batch_size", 2}}},
        {"dpo", {{"beta", 0.5}}},
        {"optimizer", {{"lr", 5e-3}}},
        {"schedule", {{"type", "linear"}, {"warmup_steps", 1}, {"max_steps", 6}}},
        {"training", {{"grad_accum", 2}, {"eval_every", 3}}},
        {"lora", {{"enabled", true}, {"rank", 4}, {"alpha", 8}, {"dropout", 0.1}}},
        {"output", {{"dir", dir.file(name)}, {"save_every", 2}, {"keep_last", 10}}}};
    if (extra.is_object()) c.merge_patch(extra);
    const std::string path = dir.file(name + ".json");
    testing::write_text(path, c.dump(2));
    return path;
  }
};

std::vector<nlohmann::json> metrics(const std::string& out) {
  std::vector<nlohmann::json> m = read_jsonl(out + "/metrics.jsonl");
  for (auto& j : m) {
    j.erase("tokens_per_s");
    j.erase("peak_memory_rss");  // the process's, not the run's
    j.erase("elapsed_s");
  }
  return m;
}

TEST(DpoCli, TokenPairsResumeToTheSameAdapter) {
  DpoFixture f;
  std::string log;
  ASSERT_EQ(run("dpo --config " + f.config("straight"), &log), 0) << log;
  const std::string straight = f.dir.file("straight");
  const auto m = metrics(straight);
  ASSERT_EQ(m.size(), 6u);
  for (const char* key : {"loss", "learning_rate", "grad_norm", "logits/chosen", "logits/rejected",
                          "rewards/chosen", "rewards/rejected", "rewards/accuracies",
                          "rewards/margins", "logps/chosen", "logps/rejected"}) {
    EXPECT_TRUE(m[0].contains(key)) << key;
  }
  EXPECT_TRUE(m[2].contains("eval_rewards/accuracies"));
  EXPECT_TRUE(fs::exists(straight + "/pivots/step-00000006.jsonl"));
  const auto pivots = read_jsonl(straight + "/pivots/step-00000006.jsonl");
  EXPECT_EQ(pivots.size(), 27u);  // every eval pair
  EXPECT_TRUE(pivots[0].contains("margin"));
  ASSERT_TRUE(fs::exists(straight + "/adapter/adapter_model.safetensors"));
  EXPECT_NEAR(m[0]["loss"].get<double>(), std::log(2.0), 1e-4);  // B = 0 at the start: z = 0

  // Same run, stopped after step 2's checkpoint (later checkpoints and outputs removed), resumed.
  ASSERT_EQ(run("dpo --config " + f.config("resumed"), &log), 0) << log;
  const std::string resumed = f.dir.file("resumed");
  for (const char* gone : {"checkpoints/step-00000004", "checkpoints/step-00000006", "adapter"})
    fs::remove_all(resumed + "/" + gone);
  ASSERT_EQ(run("dpo --config " + f.config("resumed") + " --resume", &log), 0) << log;
  EXPECT_NE(log.find("resumed from"), std::string::npos);
  EXPECT_EQ(metrics(resumed), m);
  EXPECT_EQ(read_file(resumed + "/adapter/adapter_model.safetensors"),
            read_file(straight + "/adapter/adapter_model.safetensors"));
}

TEST(DpoCli, AccumulationEqualsTheLargeBatch) {
  DpoFixture f;
  const nlohmann::json common = {
      {"data",
       {{"format", "sequence"},
        {"train", testing::source_path("examples/dpo/sequence_train.jsonl")},
        {"eval", ""},
        {"shuffle", false}}},
      {"lora", {{"dropout", 0.0}}},
      {"dpo", {{"nll_weight", 0.2}}}};
  nlohmann::json big = common, small = common;
  big["data"]["batch_size"] = 4;
  big["training"] = {{"grad_accum", 1}};
  small["data"]["batch_size"] = 1;
  small["training"] = {{"grad_accum", 4}};
  std::string log;
  ASSERT_EQ(run("dpo --config " + f.config("big", big), &log), 0) << log;
  ASSERT_EQ(run("dpo --config " + f.config("small", small), &log), 0) << log;
  const auto a = metrics(f.dir.file("big")), b = metrics(f.dir.file("small"));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_NEAR(a[i]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-5) << i;
    EXPECT_NEAR(a[i]["grad_norm"].get<double>(), b[i]["grad_norm"].get<double>(), 1e-4) << i;
  }
}

TEST(DpoCli, PrecomputedReferenceIsWrittenUsedAndChecked) {
  DpoFixture f;
  std::string log;
  const std::string pairs = f.dir.file("with_ref.jsonl");
  ASSERT_EQ(run("dpo --config " + f.config("w") + " --write-reference " + pairs, &log), 0) << log;
  ASSERT_EQ(read_jsonl(pairs).size(), 83u);
  EXPECT_TRUE(read_jsonl(pairs)[0].contains("ref_chosen_logps"));
  const nlohmann::json pre = {{"reference", {{"type", "precomputed"}, {"path", f.model}}},
                              {"data", {{"train", pairs}, {"eval", ""}}},
                              {"lora", {{"dropout", 0.0}}}};
  ASSERT_EQ(run("dpo --config " + f.config("pre", pre), &log), 0) << log;
  EXPECT_NE(log.find("max abs diff"), std::string::npos);
  // The same run with the LoRA-disabled base as reference gives the same losses.
  ASSERT_EQ(run("dpo --config " +
                    f.config("base", {{"data", {{"eval", ""}}}, {"lora", {{"dropout", 0.0}}}}),
                &log),
            0)
      << log;
  const auto a = metrics(f.dir.file("pre")), b = metrics(f.dir.file("base"));
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_NEAR(a[i]["loss"].get<double>(), b[i]["loss"].get<double>(), 1e-4) << i;
  // Stored values that disagree with the reference model are refused.
  std::string text = read_file(pairs);
  text.replace(text.find("\"ref_chosen_logps\":") + 19, 1, "-9");
  testing::write_text(pairs, text);
  EXPECT_NE(run("dpo --config " + f.config("bad", pre), &log), 0);
  EXPECT_NE(log.find("differ from"), std::string::npos) << log;
}

TEST(DpoCli, ConfigErrorsNameTheKey) {
  DpoFixture f;
  std::string log;
  EXPECT_NE(run("dpo --config " + f.config("x", {{"dpo", {{"los", "ipo"}}}}), &log), 0);
  EXPECT_NE(log.find("dpo.los"), std::string::npos) << log;
  EXPECT_NE(run("dpo --config " + f.config("y") + " --set dpo.loss=kto", &log), 0);
  EXPECT_NE(log.find("dpo.loss"), std::string::npos) << log;
}

// --help says when the held-out eval is needed (token pairs, high lr: the pair metrics cannot see
// a broken stop) and lists eval.max_clipped_ratio with its default, which limits nothing.
TEST(DpoCli, HelpSaysWhenToUseTheHeldOutEval) {
  std::string out;
  ASSERT_EQ(run("dpo --help", &out), 0) << out;
  for (const char* text :
       {"When to use the held-out eval", "token-level (PTS) pairs or at a high lr",
        "eval_completions/clipped_ratio", "eval.max_clipped_ratio"}) {
    EXPECT_NE(out.find(text), std::string::npos) << text << "\n" << out;
  }
  EXPECT_TRUE(std::regex_search(out, std::regex(R"(eval\.max_clipped_ratio +float +1\.0 )")))
      << out;
}

}  // namespace
}  // namespace align
