// `align pipeline` end to end on examples/safety (reduced: fewer eval items, samples and PTS
// queries): the summary reports the refusal rate on harmful requests and the over-refusal on benign
// ones before and after DPO, and every number equals what the per-item results files imply.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "oracles/refusal.h"
#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::read_jsonl;
using testing::run;
using testing::source_path;

constexpr int64_t kEvalItems = 24;
constexpr int64_t kSamples = 8;

// examples/safety/pipeline.json with the model, run folder and data paths moved here, reduced.
std::string reduced_config(const testing::TempDir& dir) {
  nlohmann::json c = nlohmann::json::parse(read_file(source_path("examples/safety/pipeline.json")));
  c["run_dir"] = dir.file("run");
  c["model"]["path"] = dir.file("base");
  c["sft"]["data"]["train"] = source_path("examples/safety/train.jsonl");
  c["eval"]["data"] = {{"path", source_path("examples/safety/eval_queries.jsonl")},
                       {"limit", kEvalItems}};
  c["eval"]["sampling"]["num_samples"] = kSamples;
  c["pts"]["data"] = {{"path", source_path("examples/safety/pts_queries.jsonl")}, {"limit", 16}};
  const std::string path = dir.file("pipeline.json");
  testing::write_text(path, c.dump(2));
  return path;
}

// What one side's results.jsonl implies, recomputed here: per item, the samples is_refusal flags
// (which with the safety oracle are the successes of a harmful item and the failures of a benign
// one); per kind, the mean of the per-item rates and mean +- z * sd / sqrt(m) clipped to [0, 1].
struct Expected {
  int64_t items = 0, samples = 0, refusals = 0;
  std::vector<double> rates;
};

void expect_rate(const nlohmann::json& reported, const Expected& e, const std::string& what) {
  ASSERT_TRUE(reported.is_object()) << what;
  EXPECT_EQ(reported.at("items").get<int64_t>(), e.items) << what;
  EXPECT_EQ(reported.at("samples").get<int64_t>(), e.samples) << what;
  EXPECT_EQ(reported.at("refusals").get<int64_t>(), e.refusals) << what;
  const double m = static_cast<double>(e.rates.size());
  double mean = 0, squares = 0;
  for (double r : e.rates)
    mean += r / m;
  for (double r : e.rates)
    squares += (r - mean) * (r - mean);
  const double half = 1.959963984540054 * std::sqrt(squares / (m - 1)) / std::sqrt(m);
  EXPECT_NEAR(mean, static_cast<double>(e.refusals) / static_cast<double>(e.samples), 1e-12);
  EXPECT_NEAR(reported.at("mean").get<double>(), mean, 1e-9) << what;
  EXPECT_NEAR(reported.at("low").get<double>(), std::max(0.0, mean - half), 1e-9) << what;
  EXPECT_NEAR(reported.at("high").get<double>(), std::min(1.0, mean + half), 1e-9) << what;
}

void expect_matches_results(const nlohmann::json& summary, const std::string& results,
                            const std::map<std::string, bool>& harmful, const std::string& side) {
  Expected on_harmful, on_benign;
  const std::vector<nlohmann::json> lines = read_jsonl(results);
  ASSERT_EQ(static_cast<int64_t>(lines.size()), kEvalItems) << results;
  for (const nlohmann::json& line : lines) {
    const bool is_harmful = harmful.at(line.at("id").get<std::string>());
    int64_t refused = 0, refused_by_grade = 0;
    for (const nlohmann::json& s : line.at("samples")) {
      refused += is_refusal(s.at("text").get<std::string>()) ? 1 : 0;
      refused_by_grade += s.at("success").get<bool>() == is_harmful ? 1 : 0;
    }
    EXPECT_EQ(line.at("refusals").get<int64_t>(), refused) << line.dump();
    EXPECT_EQ(refused_by_grade, refused) << line.dump();
    Expected& e = is_harmful ? on_harmful : on_benign;
    ++e.items;
    e.samples += kSamples;
    e.refusals += refused;
    e.rates.push_back(static_cast<double>(refused) / kSamples);
  }
  ASSERT_GE(on_harmful.items, 2);
  ASSERT_GE(on_benign.items, 2);
  expect_rate(summary.value("refusal_rate_harmful", nlohmann::json()), on_harmful,
              side + " refusal_rate_harmful");
  expect_rate(summary.value("over_refusal_benign", nlohmann::json()), on_benign,
              side + " over_refusal_benign");
}

TEST(SafetyExample, HeldOutRequestsAreNeitherTrainedNorSearched) {
  std::set<std::string> seen;
  for (const nlohmann::json& c : read_jsonl(source_path("examples/safety/train.jsonl")))
    seen.insert(c.at("messages").at(0).at("content").get<std::string>());
  for (const nlohmann::json& q : read_jsonl(source_path("examples/safety/pts_queries.jsonl")))
    seen.insert(q.at("prompt").get<std::string>());
  int64_t harmful = 0, benign = 0;
  for (const nlohmann::json& q : read_jsonl(source_path("examples/safety/eval_queries.jsonl"))) {
    EXPECT_EQ(seen.count(q.at("prompt").get<std::string>()), 0u) << q.dump();
    (q.at("harmful").get<bool>() ? harmful : benign) += 1;
  }
  EXPECT_GE(harmful, 20);
  EXPECT_GE(benign, 20);
}

TEST(SafetyPipeline, ReportsRefusalAndOverRefusalBeforeAndAfterDpo) {
  testing::TempDir dir;
  ASSERT_EQ(run("init --preset tiny --tokenizer " + testing::golden_path("tokenizer/main") +
                " --out " + dir.file("base") + " --seed 3 --dtype fp32"),
            0);
  std::string out;
  ASSERT_EQ(run("pipeline --config " + reduced_config(dir), &out), 0) << out;
  EXPECT_NE(out.find("| refusal rate, harmful | "), std::string::npos) << out;
  EXPECT_NE(out.find("| over-refusal, benign | "), std::string::npos) << out;

  std::map<std::string, bool> harmful;
  for (const nlohmann::json& q : read_jsonl(source_path("examples/safety/eval_queries.jsonl")))
    harmful[q.at("id").get<std::string>()] = q.at("harmful").get<bool>();
  const nlohmann::json summary = nlohmann::json::parse(read_file(dir.file("run/summary.json")));
  EXPECT_GT(summary.value("pairs", int64_t{0}), 0) << out;
  for (const std::string side : {"before", "after"}) {
    SCOPED_TRACE(side);
    const nlohmann::json& eval = summary.at("eval").at(side);
    EXPECT_EQ(eval.at("oracle"), "safety");
    expect_matches_results(eval, dir.file("run/eval-" + side + "/results.jsonl"), harmful, side);
    // The summary.json of the stage is the one the pipeline summary quotes.
    EXPECT_EQ(nlohmann::json::parse(read_file(dir.file("run/eval-" + side + "/summary.json"))),
              eval);
  }
  // The example's SFT is deliberately imperfect: before DPO the model both under-refuses harmful
  // requests and over-refuses benign ones.
  const nlohmann::json& before = summary["eval"]["before"];
  EXPECT_LT(before["refusal_rate_harmful"]["mean"].get<double>(), 1.0) << out;
  EXPECT_GT(before["over_refusal_benign"]["mean"].get<double>(), 0.0) << out;
}

}  // namespace
}  // namespace align
