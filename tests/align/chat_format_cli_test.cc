// The chat format comes from the model's own template, end to end: `align sft` on messages with a
// Phi-4-mini-format tokenizer (which also has Phi-4's <|im_start|> tokens) trains on the Phi-3
// format and ships Phi-3's template; a forced format ships its own template; a template align
// does not know is an error that quotes it and names the way out.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "tests/align/cli_runner.h"
#include "tests/test_util.h"

namespace align {
namespace {

using testing::run;
using testing::run_cli;
namespace fs = std::filesystem;

const char* kMessages =
    R"({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]})"
    "\n"
    R"({"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye!"}]})"
    "\n";

struct Fixture {
  testing::TempDir dir;
  std::string model = dir.file("model");
  std::string data = dir.file("train.jsonl");
  explicit Fixture(const std::string& tokenizer = testing::golden_path("tokenizer/phi3")) {
    EXPECT_EQ(run("init --preset tiny --tokenizer " + tokenizer + " --out " + model +
                  " --seed 1 --dtype fp32"),
              0);
    testing::write_text(data, kMessages);
  }
  std::string config(const std::string& name, const nlohmann::json& model_extra = {}) {
    nlohmann::json m = {{"path", model}, {"dtype", "fp32"}, {"device", "cpu"}};
    if (model_extra.is_object()) m.merge_patch(model_extra);
    const nlohmann::json c = {{"model", m},
                              {"data", {{"train", data}, {"max_seq_len", 64}}},
                              {"schedule", {{"max_steps", 1}}},
                              {"output", {{"dir", dir.file(name)}}}};
    const std::string path = dir.file(name + ".json");
    testing::write_text(path, c.dump(2));
    return path;
  }
};

ChatFormatKind template_kind(const std::string& dir) {
  const auto match = recognise_chat_template(read_chat_template(dir).text);
  return match ? match->kind : ChatFormatKind::kAuto;
}

// The targets of each line of `data` as `align tokenize` renders them with `model`'s template.
std::vector<std::string> targets(const std::string& model, const std::string& data) {
  const testing::CliResult r = run_cli("tokenize --model " + model + " --input " + data);
  EXPECT_EQ(r.code, 0) << r.output;
  const Tokenizer tok = Tokenizer::load(model);
  std::vector<std::string> out;
  size_t start = 0;
  while (start < r.output.size()) {
    const size_t end = r.output.find('\n', start);
    const nlohmann::json line = nlohmann::json::parse(r.output.substr(start, end - start));
    const auto ids = line.at("token_ids").get<std::vector<TokenId>>();
    const auto mask = line.at("assistant_mask").get<std::vector<int>>();
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i)
      if (mask[i]) text += tok.decode({ids[i]});
    out.push_back(text);
    start = end == std::string::npos ? r.output.size() : end + 1;
  }
  return out;
}

TEST(ChatFormatCli, SftOnAPhi4MiniTokenizerTrainsAndShipsThePhi3Format) {
  Fixture f;
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("run"), &log), 0) << log;
  const std::string out = f.dir.file("run/model");
  ASSERT_TRUE(fs::exists(out + "/model.safetensors")) << log;
  // The targets: assistant content and its <|end|>, in the Phi-3 format.
  EXPECT_EQ(targets(f.model, f.data),
            (std::vector<std::string>{"4<|end|>", "Hello!<|end|>Bye!<|end|>"}));
  // What sft counted as targets is the same: the three contents, each with its <|end|>.
  const Tokenizer tok = Tokenizer::load(f.model);
  const size_t expected =
      tok.encode("4").size() + tok.encode("Hello!").size() + tok.encode("Bye!").size() + 3;
  EXPECT_NE(log.find("(" + std::to_string(expected) + " target tokens"), std::string::npos) << log;
  // The output's template is the one it was trained in, Phi-4-mini's as it came.
  EXPECT_EQ(template_kind(out), ChatFormatKind::kPhi3);
  EXPECT_EQ(nlohmann::json::parse(read_file(out + "/tokenizer_config.json"))["chat_template"],
            nlohmann::json::parse(read_file(f.model + "/tokenizer_config.json"))["chat_template"]);
  EXPECT_EQ(targets(out, f.data), targets(f.model, f.data));
}

TEST(ChatFormatCli, AForcedFormatIsTrainedAndItsTemplateShipped) {
  Fixture f;
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("run", {{"chat_format", "phi4"}}), &log), 0) << log;
  const std::string out = f.dir.file("run/model");
  EXPECT_EQ(template_kind(f.model), ChatFormatKind::kPhi3);
  EXPECT_EQ(template_kind(out), ChatFormatKind::kPhi4);
  // The shipped template renders what was trained: Phi-4's turns.
  EXPECT_EQ(targets(out, f.data),
            (std::vector<std::string>{"4<|im_end|>", "Hello!<|im_end|>Bye!<|im_end|>"}));
  // The flag of the sampling commands forces it the same way.
  const testing::CliResult r =
      run_cli("tokenize --model " + f.model + " --text hi --chat --chat-format phi4");
  ASSERT_EQ(r.code, 0) << r.output;
  const Tokenizer tok = Tokenizer::load(f.model);
  const auto ids = nlohmann::json::parse(r.output)["token_ids"].get<std::vector<TokenId>>();
  EXPECT_EQ(tok.decode(ids),
            "<|im_start|>user<|im_sep|>hi<|im_end|><|im_start|>assistant<|im_sep|>");
}

TEST(ChatFormatCli, AnUnknownTemplateStopsWithItsStartAndTheWayOut) {
  Fixture f;
  nlohmann::json config = nlohmann::json::parse(read_file(f.model + "/tokenizer_config.json"));
  config["chat_template"] =
      "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}";
  testing::write_text(f.model + "/tokenizer_config.json", config.dump(1));
  std::string log;
  EXPECT_NE(run("sft --config " + f.config("run"), &log), 0);
  EXPECT_NE(log.find("\"{% for m in messages %}[{{ m['role'] }}]"), std::string::npos) << log;
  EXPECT_NE(log.find("model.chat_format"), std::string::npos) << log;
  EXPECT_NE(log.find("--chat-format"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(f.dir.file("run/model")));
  // Generation with the end token as a stop token needs the format too, and takes the flag.
  EXPECT_NE(run("generate --model " + f.model + " --prompt hi --max-new-tokens 2 --output " +
                    f.dir.file("g.jsonl"),
                &log),
            0);
  EXPECT_NE(log.find("--chat-format"), std::string::npos) << log;
  EXPECT_EQ(run("generate --model " + f.model +
                    " --prompt hi --chat --chat-format phi3 --max-new-tokens 2 --output " +
                    f.dir.file("g.jsonl"),
                &log),
            0)
      << log;
}

}  // namespace
}  // namespace align
