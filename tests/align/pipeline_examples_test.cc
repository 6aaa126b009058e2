// Every bundled `align pipeline` config is accepted by the pipeline's config reader
// (`align pipeline --check`: every stage's section as that stage will get it, the oracle, the
// stage order, and that the model folder and data files exist with the fields their stage reads;
// nothing runs), so a typo in an example fails here. The examples' model folders are made by the
// main jobs, so the test points model.path at a tiny model it makes; the Phi-4 example's
// PATH/TO/... files are replaced by small stand-ins with the same fields.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::run;
namespace fs = std::filesystem;

const char* const kExamples[] = {"examples/pipeline/phi4_math.json", "examples/toy/pipeline.json",
                                 "examples/arith/pipeline.json", "examples/safety/pipeline.json",
                                 "examples/smollm2/pipeline.json"};

// A tiny model folder and stand-ins for the Phi-4 example's PATH/TO/... files.
struct StandIns {
  testing::TempDir dir;
  std::string model = dir.file("model");
  StandIns() {
    EXPECT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                  " --out " + model + " --seed 1 --dtype fp32"),
              0);
    testing::write_text(dir.file("domain.jsonl"),
                        read_file(testing::source_path("examples/sft/train.jsonl")));
    testing::write_text(dir.file("math.jsonl"),
                        "{\"id\": \"q1\", \"prompt\": \"What is 1 + 1?\", \"answer\": \"2\"}\n");
  }
  // `example` with model.path at the tiny model and each PATH/TO/ file at its stand-in.
  nlohmann::json config(const std::string& example) const {
    nlohmann::json c = nlohmann::json::parse(read_file(testing::source_path(example)));
    c["model"]["path"] = model;
    for (const char* section : {"sft", "eval", "pts", "dpo"}) {
      if (!c.contains(section) || !c[section].contains("data")) continue;
      for (auto& [key, value] : c[section]["data"].items()) {
        if (!value.is_string() || value.get<std::string>().rfind("PATH/TO/", 0) != 0) continue;
        value = dir.file(std::string(section) == "sft" ? "domain.jsonl" : "math.jsonl");
      }
    }
    return c;
  }
  std::string write(const nlohmann::json& c, const std::string& name) const {
    const std::string path = dir.file(name);
    testing::write_text(path, c.dump(2));
    return path;
  }
};

TEST(PipelineExamples, EveryBundledConfigPassesTheCheck) {
  const StandIns stand_ins;
  for (const char* example : kExamples) {
    std::string out;
    const std::string path = stand_ins.write(stand_ins.config(example), "example.json");
    EXPECT_EQ(run("pipeline --check --config " + path, &out), 0) << example << "\n" << out;
    EXPECT_NE(out.find("config OK"), std::string::npos) << out;
    EXPECT_NE(out.find("eval-after"), std::string::npos) << out;
  }
}

TEST(PipelineExamples, Phi4MathRunsEveryStageFromTheMergedModels) {
  const StandIns stand_ins;
  std::string out;
  ASSERT_EQ(run("pipeline --check --config " +
                    stand_ins.write(stand_ins.config("examples/pipeline/phi4_math.json"), "p.json"),
                &out),
            0)
      << out;
  // LoRA SFT and DPO: later stages start from their merged models.
  EXPECT_NE(out.find("eval-before model runs/phi4-math/sft/merged"), std::string::npos) << out;
  EXPECT_NE(out.find("pts         model runs/phi4-math/sft/merged"), std::string::npos) << out;
  EXPECT_NE(out.find("dpo         model runs/phi4-math/sft/merged"), std::string::npos) << out;
  EXPECT_NE(out.find("eval-after  model runs/phi4-math/dpo/merged"), std::string::npos) << out;
}

// A copy of the Phi-4 example with one change; the check must fail naming the section and key,
// before anything is created.
void expect_rejected(const nlohmann::json& patch, const std::string& expected) {
  static const StandIns stand_ins;
  testing::TempDir tmp;
  nlohmann::json c = stand_ins.config("examples/pipeline/phi4_math.json");
  c["run_dir"] = tmp.file("run");
  c.merge_patch(patch);
  const std::string path = tmp.file("phi4.json");
  testing::write_text(path, c.dump(2));
  for (const char* flags : {"pipeline --check --config ", "pipeline --config "}) {
    std::string out;
    EXPECT_EQ(run(flags + path, &out), 1) << patch.dump() << "\n" << out;
    EXPECT_NE(out.find(expected), std::string::npos) << patch.dump() << "\n" << out;
    EXPECT_FALSE(fs::exists(tmp.file("run"))) << "a rejected config created its run directory";
  }
}

TEST(PipelineExamples, ATypoInAnyStageFailsBeforeTheFirstStageRuns) {
  expect_rejected({{"dpo", {{"dpo", {{"nll_wieght", 1.0}}}}}}, "(section dpo)");
  expect_rejected({{"dpo", {{"dpo", {{"nll_wieght", 1.0}}}}}}, "dpo.nll_wieght");
  expect_rejected({{"eval", {{"eval", {{"k", {1, 8}}}}}}}, "(section eval)");
  expect_rejected({{"pts", {{"pts", {{"band_low", 0.9}, {"band_high", 0.1}}}}}}, "(section pts)");
  expect_rejected({{"sft", {{"lora", {{"rnak", 8}}}}}}, "lora.rnak");
  expect_rejected({{"oracle", {{"type", "maths"}}}}, "oracle.type");
}

TEST(PipelineExamples, StagesDataFilesAndIgnoredKeysAreChecked) {
  expect_rejected({{"stages", nlohmann::json::array()}}, "stages: expected at least one");
  expect_rejected({{"stages", {"sft", "sft"}}}, "stages: sft appears twice");
  expect_rejected({{"stages", {"dpo", "sft"}}}, "stages: sft after dpo");
  expect_rejected({{"sft", {{"data", {{"train", "/nonexistent/train.jsonl"}}}}}},
                  "(section sft) data.train: /nonexistent/train.jsonl: no such file");
  expect_rejected({{"eval", {{"data", {{"path", "/nonexistent/q.jsonl"}}}}}},
                  "data.path: /nonexistent/q.jsonl: no such file");
  expect_rejected({{"sft", {{"model", {{"path", "/elsewhere"}}}}}}, "sft.model.path");
  expect_rejected({{"dpo", {{"output", {{"dir", "/elsewhere"}}}}}}, "dpo.output.dir");
  expect_rejected({{"model", {{"path", "/nonexistent/model"}}}},
                  "model.path: /nonexistent/model: no such directory");
  // A query file whose first lines lack the oracle's field.
  testing::TempDir tmp;
  testing::write_text(tmp.file("q.jsonl"), "{\"id\": 1, \"prompt\": \"2+2?\"}\n");
  expect_rejected({{"pts", {{"data", {{"path", tmp.file("q.jsonl")}}}}}},
                  "q.jsonl:1: missing oracle field \"answer\"");
}

}  // namespace
}  // namespace align
