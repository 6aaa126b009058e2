// Hub ids end to end: a fake Hugging Face cache the test writes (models--org--tiny with refs/main,
// refs/v1 and two snapshots holding real tiny models of different seeds), found through
// HF_HUB_CACHE or HF_HOME by `align generate` and `align sft`; the adapter's
// base_model_name_or_path is the hub repo, or the absolute path of a local model.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align {
namespace {

namespace fs = std::filesystem;
using testing::read_jsonl;
const std::string kMain = "0123456789abcdef0123456789abcdef01234567";
const std::string kV1 = "fedcba9876543210fedcba9876543210fedcba98";

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

struct HubFixture {
  testing::TempDir dir;
  std::string cache = dir.file("home/hub");
  std::string repo = cache + "/models--org--tiny";
  HubFixture() {
    fs::create_directories(repo + "/refs");
    fs::create_directories(repo + "/snapshots");
    int seed = 1;
    for (const std::string& hash : {kMain, kV1}) {
      EXPECT_EQ(testing::run("init --preset tiny --tokenizer " +
                             testing::golden_path("tokenizer/main") + " --out " + snapshot(hash) +
                             " --dtype fp32 --seed " + std::to_string(seed++)),
                0);
    }
    testing::write_text(repo + "/refs/main", kMain);
    testing::write_text(repo + "/refs/v1", kV1);
  }
  std::string snapshot(const std::string& hash) const { return repo + "/snapshots/" + hash; }
  // `align args` run in `cwd` with only `env` of the cache variables set.
  testing::CliResult align(const std::string& env, const std::string& args,
                           const std::string& cwd = "") const {
    return testing::run_cli_command(
        (cwd.empty() ? "" : "cd " + cwd + " && ") +
        "env -u HF_HUB_CACHE -u HUGGINGFACE_HUB_CACHE -u HF_HOME -u XDG_CACHE_HOME " + env + " " +
        testing::align_binary() + " " + args);
  }
  // The token ids `align generate --model model` samples for one prompt (seeded).
  std::vector<std::vector<int>> generate(const std::string& env, const std::string& model,
                                         const std::string& name, const std::string& cwd = "") {
    const std::string out = dir.file(name + ".jsonl");
    const testing::CliResult r =
        align(env,
              "generate --model " + model +
                  " --prompt hello --num-samples 2 --max-new-tokens 6 --seed 3 --output " + out,
              cwd);
    EXPECT_EQ(r.code, 0) << r.output;
    std::vector<std::vector<int>> ids;
    for (const auto& line : read_jsonl(out))
      ids.push_back(line.at("token_ids").get<std::vector<int>>());
    EXPECT_EQ(ids.size(), 2u);
    return ids;
  }
  std::string sft_config(const std::string& name, const std::string& model) {
    const nlohmann::json c = {{"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                              {"data",
                               {{"train", testing::source_path("examples/sft/train.jsonl")},
                                {"max_seq_len", 64},
                                {"rows_per_batch", 2}}},
                              {"schedule", {{"max_steps", 2}}},
                              {"lora", {{"enabled", true}, {"rank", 2}, {"alpha", 4}}},
                              {"output", {{"dir", dir.file(name)}}}};
    const std::string path = dir.file(name + ".json");
    testing::write_text(path, c.dump(2));
    return path;
  }
};

TEST(HubCacheCli, GenerateReadsTheSnapshotOfMainABranchOrACommit) {
  HubFixture f;
  const std::string hub_cache = "HF_HUB_CACHE=" + f.cache;
  const auto main_ids = f.generate("", f.snapshot(kMain), "main-dir");
  const auto v1_ids = f.generate("", f.snapshot(kV1), "v1-dir");
  ASSERT_NE(main_ids, v1_ids);  // two different models: the tests below tell them apart
  EXPECT_EQ(f.generate(hub_cache, "org/tiny", "main-hub"), main_ids);
  EXPECT_EQ(f.generate("HF_HOME=" + f.dir.file("home"), "org/tiny", "main-home"), main_ids);
  EXPECT_EQ(f.generate(hub_cache, "org/tiny@v1", "v1-hub"), v1_ids);
  EXPECT_EQ(f.generate(hub_cache, "org/tiny@" + kV1, "v1-hash"), v1_ids);
  EXPECT_EQ(f.generate(hub_cache, "org/tiny@main", "main-named"), main_ids);
  // An existing local directory named like the id wins over the cache.
  fs::create_directories(f.dir.file("work/org"));
  fs::copy(f.snapshot(kV1), f.dir.file("work/org/tiny"), fs::copy_options::recursive);
  EXPECT_EQ(f.generate(hub_cache, "org/tiny", "local", f.dir.file("work")), v1_ids);
}

TEST(HubCacheCli, MissingIdsListWhereTheyWereLookedFor) {
  HubFixture f;
  testing::CliResult r = f.align("HF_HUB_CACHE=" + f.cache, "tokenize --model org/nope --text hi");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(
      r.output.find("--model: org/nope: neither a local directory nor a Hugging Face model id in "
                    "the local cache"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(f.cache + " (the cache, from HF_HUB_CACHE)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(f.cache + "/models--org--nope (no such directory)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("hf download org/nope"), std::string::npos) << r.output;

  r = f.align("HF_HOME=" + f.dir.file("home"),
              "generate --model org/tiny@v2 --prompt hi --output " + f.dir.file("o.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(f.cache + " (the cache, from HF_HOME/hub)"), std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find(f.repo + "/refs/v2 (no such file)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("hf download org/tiny --revision v2"), std::string::npos) << r.output;

  // With neither variable set the default under HOME is searched.
  r = f.align("HOME=" + f.dir.file("nohome"), "logprobs --model org/tiny --input x --output y");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(f.dir.file("nohome") + "/.cache/huggingface/hub (the cache"),
            std::string::npos)
      << r.output;
}

TEST(HubCacheCli, SftRecordsTheHubIdOrTheAbsoluteLocalPathAsTheBase) {
  HubFixture f;
  const std::string env = "HF_HUB_CACHE=" + f.cache;
  testing::CliResult r = f.align(env, "sft --config " + f.sft_config("hub", "org/tiny"));
  ASSERT_EQ(r.code, 0) << r.output;
  nlohmann::json adapter = read_json(f.dir.file("hub/adapter/adapter_config.json"));
  EXPECT_EQ(adapter.at("base_model_name_or_path"), "org/tiny");
  EXPECT_TRUE(adapter.at("revision").is_null());
  EXPECT_EQ(read_json(f.dir.file("hub/config.json")).at("model").at("path"), "org/tiny");

  r = f.align(env, "sft --config " + f.sft_config("hub-v1", "org/tiny@v1"));
  ASSERT_EQ(r.code, 0) << r.output;
  adapter = read_json(f.dir.file("hub-v1/adapter/adapter_config.json"));
  EXPECT_EQ(adapter.at("base_model_name_or_path"), "org/tiny");
  EXPECT_EQ(adapter.at("revision"), "v1");

  // A relative local directory, run from its parent: the adapter names it absolutely.
  fs::create_directories(f.dir.file("work"));
  fs::copy(f.snapshot(kMain), f.dir.file("work/base"), fs::copy_options::recursive);
  r = f.align(env, "sft --config " + f.sft_config("local", "base"), f.dir.file("work"));
  ASSERT_EQ(r.code, 0) << r.output;
  adapter = read_json(f.dir.file("local/adapter/adapter_config.json"));
  EXPECT_EQ(adapter.at("base_model_name_or_path"), fs::canonical(f.dir.file("work/base")).string());
  EXPECT_EQ(read_json(f.dir.file("local/config.json")).at("model").at("path"), "base");
}

// A DPO config on the token pairs of examples/dpo/, with the policy and a frozen checkpoint
// reference named as given.
std::string dpo_config(const HubFixture& f, const std::string& name, const std::string& model,
                       const std::string& reference) {
  const nlohmann::json c = {{"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                            {"reference", {{"type", "checkpoint"}, {"path", reference}}},
                            {"data",
                             {{"train", testing::source_path("examples/dpo/token_train.jsonl")},
                              {"format", "token"},
                              {"max_seq_len", 256},
                              {"batch_size", 2}}},
                            {"schedule", {{"max_steps", 2}}},
                            {"lora", {{"enabled", true}, {"rank", 2}, {"alpha", 4}}},
                            {"output", {{"dir", f.dir.file(name)}}}};
  const std::string path = f.dir.file(name + ".json");
  testing::write_text(path, c.dump(2));
  return path;
}

// An eval config over two prompts, sampled from `model`.
std::string eval_config(const HubFixture& f, const std::string& name, const std::string& model) {
  testing::write_text(
      f.dir.file("items.jsonl"),
      "{\"id\": \"a\", \"prompt\": \"hello\"}\n{\"id\": \"b\", \"prompt\": \"x\"}\n");
  const nlohmann::json c = {{"model", {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}}},
                            {"data", {{"path", f.dir.file("items.jsonl")}}},
                            {"oracle", {{"type", "regex"}, {"pattern", "a"}}},
                            {"sampling", {{"max_new_tokens", 6}, {"num_samples", 2}, {"seed", 5}}},
                            {"eval", {{"k", {1}}}},
                            {"output", {{"dir", f.dir.file(name)}}}};
  const std::string path = f.dir.file(name + ".json");
  testing::write_text(path, c.dump(2));
  return path;
}

// The DPO reference and align eval take hub ids too, and read the same snapshot a local path to it
// gives: the same losses, the same samples.
TEST(HubCacheCli, DpoReferenceAndEvalReadTheSnapshotTheIdNames) {
  HubFixture f;
  const std::string env = "HF_HOME=" + f.dir.file("home");
  testing::CliResult r =
      f.align(env, "dpo --config " + dpo_config(f, "hub", "org/tiny", "org/tiny@v1"));
  ASSERT_EQ(r.code, 0) << r.output;
  r = f.align(env, "dpo --config " + dpo_config(f, "local", f.snapshot(kMain), f.snapshot(kV1)));
  ASSERT_EQ(r.code, 0) << r.output;
  auto losses = [&](const std::string& name) {
    std::vector<double> out;
    for (const auto& line : read_jsonl(f.dir.file(name + "/metrics.jsonl")))
      if (line.contains("loss")) out.push_back(line.at("loss").get<double>());
    return out;
  };
  EXPECT_FALSE(losses("hub").empty());
  EXPECT_EQ(losses("hub"), losses("local"));
  // The reference is v1, not main: against main (the policy's own start) the first loss is log 2.
  r = f.align(env, "dpo --config " + dpo_config(f, "same", "org/tiny", "org/tiny"));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NEAR(losses("same").at(0), std::log(2.0), 1e-5);
  EXPECT_GT(std::abs(losses("hub").at(0) - std::log(2.0)), 1e-3);

  r = f.align(env, "eval --config " + eval_config(f, "eval-hub", "org/tiny@v1"));
  ASSERT_EQ(r.code, 0) << r.output;
  r = f.align(env, "eval --config " + eval_config(f, "eval-local", f.snapshot(kV1)));
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_EQ(read_file(f.dir.file("eval-hub/results.jsonl")),
            read_file(f.dir.file("eval-local/results.jsonl")));
  r = f.align(env, "eval --config " + eval_config(f, "eval-missing", "org/absent"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("models--org--absent"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace align
