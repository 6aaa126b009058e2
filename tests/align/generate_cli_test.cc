// `align generate` end to end: greedy output reproduces transformers' greedy continuations (golden
// files), sampled log-probs agree with `align logprobs` on the same tokens, and outputs carry the
// documented fields.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::read_jsonl;
using testing::run;

// A tiny random model with the golden tokenizer (vocabulary sized to it).
std::string model_with_tokenizer(const testing::TempDir& dir) {
  const std::string model = dir.file("model");
  EXPECT_EQ(run("init --preset tiny --dtype fp32 --seed 2 --tokenizer " +
                testing::golden_path("tokenizer/main") + " --out " + model),
            0);
  return model;
}

TEST(GenerateCli, GreedyReproducesTransformers) {
  testing::TempDir dir;
  const std::string model = testing::golden_path("model/phi4_tiny");  // no tokenizer: ids in
  auto golden = nlohmann::json::parse(read_file(testing::golden_path("model/phi4_tiny.json")));
  std::string lines;
  size_t max_new = 0;
  for (const auto& g : golden["greedy"]) {
    lines += nlohmann::json({{"token_ids", g["prompt"]}}).dump() + "\n";
    max_new = std::max(max_new, g["fp32"].size());
  }
  testing::write_text(dir.file("in.jsonl"), lines);
  std::string log;
  ASSERT_EQ(run("generate --model " + model + " --input " + dir.file("in.jsonl") + " --output " +
                    dir.file("out.jsonl") + " --temperature 0 --dtype fp32" + " --max-new-tokens " +
                    std::to_string(max_new),
                &log),
            0)
      << log;
  auto out = read_jsonl(dir.file("out.jsonl"));
  ASSERT_EQ(out.size(), golden["greedy"].size());
  for (size_t i = 0; i < out.size(); ++i) {
    const auto want = golden["greedy"][i]["fp32"].get<std::vector<int64_t>>();
    auto got = out[i]["token_ids"].get<std::vector<int64_t>>();
    ASSERT_GE(got.size(), 1u);
    // The golden continuation has a fixed length; ours may stop earlier on a stop token.
    got.resize(std::min(got.size(), want.size()));
    EXPECT_EQ(got, std::vector<int64_t>(want.begin(), want.begin() + got.size())) << i;
    EXPECT_EQ(out[i]["prompt_index"], i);
    EXPECT_EQ(out[i]["sample_index"], 0);
    EXPECT_TRUE(out[i]["finish_reason"] == "stop" || out[i]["finish_reason"] == "length");
  }
}

// Phi-4-mini-shaped longrope model (switch at 32 tokens, docs/longrope.md): `align generate`
// reproduces transformers' greedy generate() across the switch with its per-step log-probs, and
// `align logprobs` of the whole sequences reproduces transformers' full forward (which gives the
// tokens drawn before the switch other log-probs: long factors everywhere).
TEST(GenerateCli, LongropeAcrossTheSwitchReproducesTransformers) {
  testing::TempDir dir;
  const std::string model = testing::golden_path("model/mini_tiny");
  auto golden = nlohmann::json::parse(read_file(testing::golden_path("model/mini_tiny.json")));
  const auto& crossing = golden["crossing"];
  std::string prompts, sequences;
  size_t max_new = 0;
  for (const auto& g : crossing) {
    prompts += nlohmann::json({{"token_ids", g["prompt"]}}).dump() + "\n";
    auto seq = g["prompt"].get<std::vector<int64_t>>();
    for (int64_t t : g["fp32"]["tokens"].get<std::vector<int64_t>>())
      seq.push_back(t);
    sequences += nlohmann::json({{"token_ids", seq}}).dump() + "\n";
    max_new = std::max(max_new, g["fp32"]["tokens"].size());
  }
  testing::write_text(dir.file("prompts.jsonl"), prompts);
  testing::write_text(dir.file("sequences.jsonl"), sequences);
  std::string log;
  ASSERT_EQ(run("generate --model " + model + " --input " + dir.file("prompts.jsonl") +
                    " --output " + dir.file("gen.jsonl") + " --temperature 0 --dtype fp32" +
                    " --max-new-tokens " + std::to_string(max_new),
                &log),
            0)
      << log;
  ASSERT_EQ(run("logprobs --model " + model + " --input " + dir.file("sequences.jsonl") +
                    " --output " + dir.file("scored.jsonl") + " --dtype fp32",
                &log),
            0)
      << log;
  const auto gen = read_jsonl(dir.file("gen.jsonl"));
  const auto scored = read_jsonl(dir.file("scored.jsonl"));
  ASSERT_EQ(gen.size(), crossing.size());
  ASSERT_EQ(scored.size(), crossing.size());
  double gen_err = 0, score_err = 0;
  for (size_t i = 0; i < crossing.size(); ++i) {
    const auto want = crossing[i]["fp32"]["tokens"].get<std::vector<int64_t>>();
    const auto want_lp = crossing[i]["fp32"]["logprobs"].get<std::vector<double>>();
    const auto full_lp = crossing[i]["fp32"]["full_logprobs"].get<std::vector<double>>();
    auto got = gen[i]["token_ids"].get<std::vector<int64_t>>();
    ASSERT_GE(got.size(), want.size()) << i;  // no stop token in these continuations
    got.resize(want.size());
    EXPECT_EQ(got, want) << i;
    const size_t P = crossing[i]["prompt"].size();
    for (size_t t = 0; t < want.size(); ++t) {
      gen_err = std::max(gen_err, std::abs(gen[i]["logprobs"][t].get<double>() - want_lp[t]));
      score_err =
          std::max(score_err, std::abs(scored[i]["logprobs"][P + t].get<double>() - full_lp[t]));
    }
  }
  EXPECT_LT(gen_err, 1e-4);
  EXPECT_LT(score_err, 1e-4);
}

TEST(GenerateCli, SampledLogprobsAgreeWithTeacherForcedScoring) {
  testing::TempDir dir;
  const std::string model = model_with_tokenizer(dir);
  std::string log;
  ASSERT_EQ(run("generate --model " + model + " --prompt 'hello world' --num-samples 3" +
                    " --max-new-tokens 12 --temperature 0.8 --top-p 0.9 --seed 5 --output " +
                    dir.file("gen.jsonl"),
                &log),
            0)
      << log;
  auto gen = read_jsonl(dir.file("gen.jsonl"));
  ASSERT_EQ(gen.size(), 3u);
  std::string tok_log;
  ASSERT_EQ(run("tokenize --model " + model + " --text 'hello world'", &tok_log), 0) << tok_log;
  const auto prompt = nlohmann::json::parse(tok_log)["token_ids"].get<std::vector<int64_t>>();
  std::string lines;
  for (const auto& g : gen) {
    auto ids = prompt;
    for (int64_t t : g["token_ids"].get<std::vector<int64_t>>())
      ids.push_back(t);
    lines += nlohmann::json({{"token_ids", ids}}).dump() + "\n";
    EXPECT_EQ(g["logprobs"].size(), g["token_ids"].size());
  }
  testing::write_text(dir.file("score.jsonl"), lines);
  ASSERT_EQ(run("logprobs --model " + model + " --input " + dir.file("score.jsonl") + " --output " +
                    dir.file("scored.jsonl") + " --dtype fp32",
                &log),
            0)
      << log;
  auto scored = read_jsonl(dir.file("scored.jsonl"));
  double worst = 0;
  for (size_t i = 0; i < gen.size(); ++i) {
    const auto& lp = gen[i]["logprobs"];
    for (size_t t = 0; t < lp.size(); ++t) {
      worst = std::max(worst, std::abs(lp[t].get<double>() -
                                       scored[i]["logprobs"][prompt.size() + t].get<double>()));
    }
  }
  EXPECT_LT(worst, 1e-4);
}

TEST(GenerateCli, BadFlagsAreNamed) {
  testing::TempDir dir;
  const std::string model = model_with_tokenizer(dir);
  std::string log;
  EXPECT_NE(
      run("generate --model " + model + " --prompt hi --top-p 0 --output " + dir.file("o.jsonl"),
          &log),
      0);
  EXPECT_NE(log.find("--top-p"), std::string::npos) << log;
  EXPECT_FALSE(std::filesystem::exists(dir.file("o.jsonl")));
}

}  // namespace
}  // namespace align
