// Every bundled `align pipeline` config is accepted by the pipeline's config reader
// (`align pipeline --check`: every stage's section as that stage will get it, and the oracle;
// nothing runs, no model is read), so a typo in an example fails here. The Phi-4 example points
// at files that do not exist here; --check reads none of them.
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
                                 "examples/arith/pipeline.json", "examples/safety/pipeline.json"};

TEST(PipelineExamples, EveryBundledConfigPassesTheCheck) {
  for (const char* example : kExamples) {
    std::string out;
    EXPECT_EQ(run("pipeline --check --config " + testing::source_path(example), &out), 0)
        << example << "\n"
        << out;
    EXPECT_NE(out.find("config OK"), std::string::npos) << out;
    EXPECT_NE(out.find("eval-after"), std::string::npos) << out;
  }
}

TEST(PipelineExamples, Phi4MathRunsEveryStageFromTheMergedModels) {
  std::string out;
  ASSERT_EQ(
      run("pipeline --check --config " + testing::source_path("examples/pipeline/phi4_math.json"),
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
  testing::TempDir tmp;
  nlohmann::json c =
      nlohmann::json::parse(read_file(testing::source_path("examples/pipeline/phi4_math.json")));
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

}  // namespace
}  // namespace align
