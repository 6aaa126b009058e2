// End-to-end tests of the `align` binary: init, tokenize and logprobs on real files, compared with
// the Hugging Face golden files, and the errors users see for bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
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
using Result = testing::CliResult;
Result run(const std::string& args) {
  return testing::run_cli(args);
}
namespace fs = std::filesystem;

const std::string kTokenizer = testing::golden_path("tokenizer/main");

TEST(CliInit, TinyModelWithTokenizerIsCompleteAndDeterministic) {
  testing::TempDir dir;
  Result r =
      run("init --preset tiny --tokenizer " + kTokenizer + " --out " + dir.file("a") + " --seed 3");
  ASSERT_EQ(r.code, 0) << r.output;
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors",
                        "tokenizer.json", "tokenizer_config.json"}) {
    EXPECT_TRUE(fs::exists(dir.file("a/") + f)) << f;
  }
  EXPECT_FALSE(fs::exists(dir.file("a.partial")));
  // The vocabulary follows the tokenizer: its largest id + 1, padded to a multiple of 64.
  auto tok = nlohmann::json::parse(read_file(kTokenizer + "/tokenizer.json"));
  int64_t max_id = 0;
  for (const auto& [token, id] : tok["model"]["vocab"].items())
    max_id = std::max<int64_t>(max_id, id);
  for (const auto& added : tok["added_tokens"])
    max_id = std::max<int64_t>(max_id, added["id"]);
  auto config = nlohmann::json::parse(read_file(dir.file("a/config.json")));
  const int64_t vocab = config["vocab_size"].get<int64_t>();
  EXPECT_GE(vocab, max_id + 1);
  EXPECT_LT(vocab, max_id + 1 + 64);
  EXPECT_EQ(vocab % 64, 0);
  EXPECT_EQ(config["architectures"][0], "Phi3ForCausalLM");

  ASSERT_EQ(
      run("init --preset tiny --tokenizer " + kTokenizer + " --out " + dir.file("b") + " --seed 3")
          .code,
      0);
  ASSERT_EQ(
      run("init --preset tiny --tokenizer " + kTokenizer + " --out " + dir.file("c") + " --seed 4")
          .code,
      0);
  EXPECT_EQ(read_file(dir.file("a/model.safetensors")), read_file(dir.file("b/model.safetensors")));
  EXPECT_NE(read_file(dir.file("a/model.safetensors")), read_file(dir.file("c/model.safetensors")));
}

TEST(CliInit, ShardsLargeModelsAndRefusesToClobber) {
  testing::TempDir dir;
  ASSERT_EQ(run("init --preset tiny --out " + dir.file("m") + " --max-shard-size 200000").code, 0);
  EXPECT_TRUE(fs::exists(dir.file("m/model.safetensors.index.json")));
  Result again = run("init --preset tiny --out " + dir.file("m"));
  EXPECT_NE(again.code, 0);
  EXPECT_NE(again.output.find("already exists"), std::string::npos) << again.output;
  EXPECT_EQ(run("init --preset tiny --out " + dir.file("m") + " --overwrite").code, 0);
  EXPECT_FALSE(fs::exists(dir.file("m/model.safetensors.index.json")));
}

TEST(CliInit, BadPresetAndBadConfigAreNamed) {
  testing::TempDir dir;
  Result r = run("init --preset phi-5 --out " + dir.file("x"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("phi-5"), std::string::npos) << r.output;
  testing::write_text(dir.file("config.json"), "{\"model_type\": \"phi3\", \"hidden_size\": ");
  r = run("init --config " + dir.file("config.json") + " --out " + dir.file("y"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(dir.file("config.json")), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("y")));
}

TEST(CliTokenize, MatchesHuggingFaceGoldenEncodings) {
  auto golden =
      nlohmann::json::parse(read_file(testing::golden_path("tokenizer/encode_main.json")));
  ASSERT_TRUE(golden.is_array() || golden.is_object());
  const auto& cases = golden.is_array() ? golden : golden.at("cases");
  testing::TempDir dir;
  // Every golden text through the CLI's JSONL path at once.
  std::string lines;
  std::vector<std::vector<int64_t>> want;
  for (const auto& c : cases) {
    if (!c.contains("text") || !c.value("allow_special", true)) continue;
    lines += nlohmann::json({{"text", c["text"]}}).dump() + "\n";
    want.push_back(c.at("ids").get<std::vector<int64_t>>());
  }
  ASSERT_GT(want.size(), 10u);
  testing::write_text(dir.file("in.jsonl"), lines);
  Result r = run("tokenize --model " + kTokenizer + " --input " + dir.file("in.jsonl") +
                 " --output " + dir.file("out.jsonl"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto got = read_jsonl(dir.file("out.jsonl"));
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i]["token_ids"].get<std::vector<int64_t>>(), want[i]) << "case " << i;
  }
}

TEST(CliTokenize, ChatMessagesGetTheChatFormatAndAMask) {
  testing::TempDir dir;
  testing::write_text(dir.file("in.jsonl"), R"({"messages": [{"role": "user", "content": "hi"}, )"
                                            R"({"role": "assistant", "content": "ok"}]})"
                                            "\n");
  Result r = run("tokenize --model " + kTokenizer + " --input " + dir.file("in.jsonl"));
  ASSERT_EQ(r.code, 0) << r.output;
  auto out = nlohmann::json::parse(r.output);
  auto ids = out["token_ids"].get<std::vector<int64_t>>();
  auto mask = out["assistant_mask"].get<std::vector<int>>();
  auto tok = nlohmann::json::parse(read_file(kTokenizer + "/tokenizer.json"));
  auto id_of = [&](const std::string& content) -> int64_t {
    for (const auto& a : tok["added_tokens"]) {
      if (a["content"] == content) return a["id"];
    }
    return -1;
  };
  ASSERT_EQ(ids.size(), mask.size());
  EXPECT_EQ(ids.front(), id_of("<|im_start|>"));
  EXPECT_EQ(ids.back(), id_of("<|im_end|>"));  // no generation prompt after an assistant turn
  EXPECT_EQ(mask.back(), 1);
  EXPECT_EQ(mask.front(), 0);
}

TEST(CliLogprobs, MatchesTransformersOnTheGoldenModel) {
  for (const std::string name : {"phi4_tiny", "mini_tiny"}) {
    auto golden = nlohmann::json::parse(read_file(testing::golden_path("model/" + name + ".json")));
    testing::TempDir dir;
    std::string lines;
    for (const auto& s : golden["sequences"]) {
      lines += nlohmann::json({{"token_ids", s["tokens"]}}).dump() + "\n";
    }
    testing::write_text(dir.file("in.jsonl"), lines);
    Result r = run("logprobs --model " + testing::golden_path("model/" + name) + " --input " +
                   dir.file("in.jsonl") + " --output " + dir.file("out.jsonl") + " --dtype fp32");
    ASSERT_EQ(r.code, 0) << r.output;
    auto got = read_jsonl(dir.file("out.jsonl"));
    ASSERT_EQ(got.size(), golden["sequences"].size());
    double max_err = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const auto& want = golden["sequences"][i]["logprobs_fp32"];
      const auto& lp = got[i]["logprobs"];
      ASSERT_EQ(lp.size(), want.size());
      EXPECT_TRUE(lp[0].is_null());
      for (size_t t = 1; t < lp.size(); ++t) {
        max_err = std::max(max_err, std::abs(lp[t].get<double>() - want[t].get<double>()));
      }
    }
    EXPECT_LE(max_err, 1e-4) << name;
  }
}

TEST(CliLogprobs, BadInputNamesTheLineAndWritesNothing) {
  testing::TempDir dir;
  const std::string model = testing::golden_path("model/phi4_tiny");
  testing::write_text(dir.file("bad.jsonl"), "{\"token_ids\": [1, 2]}\n{\"token_ids\": [1, \n");
  Result r = run("logprobs --model " + model + " --input " + dir.file("bad.jsonl") + " --output " +
                 dir.file("out.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(dir.file("bad.jsonl") + ":2"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("out.jsonl")));

  testing::write_text(dir.file("range.jsonl"), "{\"token_ids\": [1, 999999]}\n");
  r = run("logprobs --model " + model + " --input " + dir.file("range.jsonl") + " --output " +
          dir.file("out.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("\"token_ids\"[1]: token id 999999 is outside the model's vocabulary"),
            std::string::npos)
      << r.output;

  testing::write_text(dir.file("text.jsonl"), "{\"text\": \"hello\"}\n");
  r = run("logprobs --model " + model + " --input " + dir.file("text.jsonl") + " --output " +
          dir.file("out.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("has none"), std::string::npos) << r.output;

  r = run("logprobs --model " + dir.file("missing") + " --input " + dir.file("text.jsonl") +
          " --output " + dir.file("out.jsonl"));
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find(dir.file("missing")), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("out.jsonl")));
}

// --help of the commands that take a run config lists every key with its default, from the
// config's one definition: the same keys the reader accepts and config.json records.
TEST(CliHelp, ConfigCommandsListTheirKeysAndDefaults) {
  const Result sft = run("sft --help");
  ASSERT_EQ(sft.code, 0) << sft.output;
  for (const char* line : {"optimizer.lr", "2e-05", "schedule.type",
                           "\"cosine\" (cosine, linear or "
                           "constant)",
                           "data.train*", "lora.target_modules"}) {
    EXPECT_NE(sft.output.find(line), std::string::npos) << line << "\n" << sft.output;
  }
  const Result dpo = run("dpo --help");
  ASSERT_EQ(dpo.code, 0) << dpo.output;
  EXPECT_TRUE(std::regex_search(dpo.output, std::regex(R"(optimizer\.lr +float +1e-06 )")))
      << dpo.output;  // DPO's own default, with the key's type
  EXPECT_NE(dpo.output.find("reference.type"), std::string::npos) << dpo.output;
  for (const char* cmd : {"pts", "eval"}) {
    const Result r = run(std::string(cmd) + " --help");
    ASSERT_EQ(r.code, 0) << r.output;
    EXPECT_NE(r.output.find("rollout.kv_budget_tokens"), std::string::npos) << r.output;
    EXPECT_NE(r.output.find("sampling.temperature"), std::string::npos) << r.output;
  }
}

// --print-config prints the whole config as JSON: every default without --config, the file with
// its --set overrides applied otherwise; an unknown key names the closest known one.
TEST(CliHelp, PrintConfigShowsDefaultsOrTheResolvedConfig) {
  for (const char* cmd : {"sft", "dpo", "pts", "eval"}) {
    const Result r = run(std::string(cmd) + " --print-config");
    ASSERT_EQ(r.code, 0) << cmd << ": " << r.output;
    const nlohmann::json j = nlohmann::json::parse(r.output);
    EXPECT_TRUE(j.contains("model")) << r.output;
    EXPECT_TRUE(j.at("model").contains("dtype")) << r.output;
  }
  const nlohmann::json sft = nlohmann::json::parse(run("sft --print-config").output);
  EXPECT_EQ(sft.at("optimizer").at("lr").get<double>(), 2e-5);
  EXPECT_EQ(sft.at("schedule").at("type").get<std::string>(), "cosine");

  testing::TempDir dir;
  const std::string config = dir.file("sft.json");
  testing::write_text(config, nlohmann::json{{"model", {{"path", dir.path()}}},
                                             {"output", {{"dir", dir.file("out")}}},
                                             {"data", {{"train", dir.file("t.jsonl")}}}}
                                  .dump());
  Result r = run("sft --config " + config + " --set optimizer.lr=0.001 --print-config");
  ASSERT_EQ(r.code, 0) << r.output;
  const nlohmann::json resolved = nlohmann::json::parse(r.output);
  EXPECT_EQ(resolved.at("optimizer").at("lr").get<double>(), 0.001);
  EXPECT_EQ(resolved.at("data").at("max_seq_len").get<int64_t>(), 2048);  // a default filled in
  EXPECT_FALSE(fs::exists(dir.file("out")));                              // nothing was run

  r = run("sft --config " + config + " --set optimizer.weight_decy=0.1");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("optimizer.weight_decy (did you mean optimizer.weight_decay?)"),
            std::string::npos)
      << r.output;
  r = run("sft");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("--config is required"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace align
