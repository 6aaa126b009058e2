// The chat format comes from the model's own template, end to end: `align sft` on messages with a
// Phi-4-mini-format tokenizer (which also has Phi-4's <|im_start|> tokens) trains on its template
// and ships it unchanged; a forced format ships its own template and says so; any template is
// run as it is, and inputs that render nothing never read it (a template that cannot be parsed
// stops only what needs it, naming the file and line).
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

std::string template_of(const std::string& dir) {
  return read_chat_template(dir).text;
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
  EXPECT_EQ(template_of(out), published_chat_template(ChatFormatKind::kPhi3));
  EXPECT_EQ(log.find("chat template is"), std::string::npos) << log;
  EXPECT_EQ(nlohmann::json::parse(read_file(out + "/tokenizer_config.json"))["chat_template"],
            nlohmann::json::parse(read_file(f.model + "/tokenizer_config.json"))["chat_template"]);
  EXPECT_EQ(targets(out, f.data), targets(f.model, f.data));
}

TEST(ChatFormatCli, AForcedFormatIsTrainedAndItsTemplateShipped) {
  Fixture f;
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("run", {{"chat_format", "phi4"}}), &log), 0) << log;
  const std::string out = f.dir.file("run/model");
  EXPECT_EQ(template_of(f.model), published_chat_template(ChatFormatKind::kPhi3));
  EXPECT_EQ(template_of(out), published_chat_template(ChatFormatKind::kPhi4));
  EXPECT_NE(log.find("model.chat_format phi4's published template"), std::string::npos) << log;
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

TEST(ChatFormatCli, AnyTemplateIsUsedAsItIsAndTextNeedsNone) {
  Fixture f;
  nlohmann::json config = nlohmann::json::parse(read_file(f.model + "/tokenizer_config.json"));
  config["chat_template"] =
      "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}<|end|>\n{% endfor %}"
      "{% if add_generation_prompt %}[assistant] {% endif %}";
  testing::write_text(f.model + "/tokenizer_config.json", config.dump(1));
  std::string log;
  ASSERT_EQ(run("sft --config " + f.config("run"), &log), 0) << log;
  // The generation prompt ends with a space that the tokenizer merges with "Hello" (" H" is one
  // token): that token is the model's to produce, so it is a target, space and all.
  EXPECT_EQ(targets(f.model, f.data),
            (std::vector<std::string>{"4<|end|>", " Hello!<|end|>Bye!<|end|>"}));
  EXPECT_EQ(template_of(f.dir.file("run/model")), config["chat_template"].get<std::string>());

  // A template the engine cannot parse: what renders nothing still runs...
  config["chat_template"] = "{% for m in messages %}\n{{ m['content'] }}\n{% if %}{% endfor %}";
  testing::write_text(f.model + "/tokenizer_config.json", config.dump(1));
  testing::write_text(f.dir.file("text.jsonl"), "{\"text\": \"2+2=4\"}\n");
  nlohmann::json text_run = nlohmann::json::parse(read_file(f.config("text")));
  text_run["data"]["train"] = f.dir.file("text.jsonl");
  testing::write_text(f.dir.file("text.json"), text_run.dump());
  EXPECT_EQ(run("sft --config " + f.dir.file("text.json"), &log), 0) << log;
  EXPECT_EQ(template_of(f.dir.file("text/model")), config["chat_template"].get<std::string>());
  EXPECT_EQ(run("generate --model " + f.model + " --prompt hi --max-new-tokens 2 --output " +
                    f.dir.file("g.jsonl"),
                &log),
            0)
      << log;
  // ...and what renders a chat stops, naming the file and the template's line.
  EXPECT_NE(run("sft --config " + f.config("broken"), &log), 0);
  EXPECT_NE(log.find("tokenizer_config.json: chat_template: line 3"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(f.dir.file("broken/model")));
  EXPECT_NE(run("generate --model " + f.model + " --prompt hi --chat --max-new-tokens 2 --output " +
                    f.dir.file("g.jsonl"),
                &log),
            0);
  EXPECT_NE(log.find("line 3"), std::string::npos) << log;
  // Forcing a published format is the way round it.
  EXPECT_EQ(run("generate --model " + f.model +
                    " --prompt hi --chat --chat-format phi3 --max-new-tokens 2 --output " +
                    f.dir.file("g.jsonl"),
                &log),
            0)
      << log;
}

}  // namespace
}  // namespace align
