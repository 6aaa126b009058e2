// align tokenize --model DIR (--text STR | --input FILE.jsonl) [--chat] [--output FILE.jsonl]
// One JSON object per input on stdout (or --output): {"token_ids": [...]}, plus "assistant_mask"
// when the chat format was applied.
#include <iostream>

#include "align/commands.h"
#include "align/token_input.h"
#include "common/error.h"
#include "common/hub_cache.h"
#include "common/jsonl.h"

namespace align {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string input;
  std::string output;
  bool chat = false;
  std::string chat_format = "auto";
};

nlohmann::json to_json(const TokenInput& input) {
  nlohmann::json out = {{"token_ids", input.ids}};
  if (input.assistant_mask) out["assistant_mask"] = *input.assistant_mask;
  return out;
}

void run_tokenize(const TokenizeOptions& opt) {
  const std::string dir = resolve_model_dir(opt.model, "--model").dir;
  const Tokenizer tokenizer = Tokenizer::load(dir);
  const LazyChatFormat format(dir, &tokenizer,
                              parse_enum<ChatFormatKind>(opt.chat_format, "--chat-format"),
                              "--chat-format");
  std::vector<nlohmann::json> results;
  if (!opt.input.empty()) {
    for_each_jsonl(opt.input, [&](const nlohmann::json& record, const JsonlLocation&) {
      results.push_back(
          to_json(read_token_input(record, &tokenizer, opt.chat, tokenizer.vocab_size(), format)));
    });
  } else {
    results.push_back(to_json(text_token_input(opt.text, tokenizer, opt.chat, format)));
  }
  if (opt.output.empty()) {
    for (const auto& r : results)
      std::cout << r.dump() << "\n";
    return;
  }
  JsonlWriter writer(opt.output);
  for (const auto& r : results)
    writer.write(r);
  writer.commit();
}

}  // namespace

void add_tokenize_command(CLI::App& app) {
  auto opt = std::make_shared<TokenizeOptions>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Encode text or chat messages to token ids");
  cmd->add_option("--model", opt->model, "Model or tokenizer directory (tokenizer.json, ...)")
      ->required();
  auto* text = cmd->add_option("--text", opt->text, "Text to encode");
  auto* input = cmd->add_option(
      "--input", opt->input, "JSONL file; each line has \"text\", \"messages\" or \"token_ids\"");
  text->excludes(input);
  cmd->add_option("--output", opt->output, "Write JSONL here instead of stdout");
  cmd->add_flag("--chat", opt->chat, "Wrap --text / \"text\" as a user turn in the chat format");
  cmd->add_option("--chat-format", opt->chat_format,
                  "auto (the model's chat template), phi4 or phi3 (docs/chat_formats.md)");
  cmd->callback([opt, text, input] {
    if (text->count() + input->count() != 1) {
      throw InputError("tokenize: give exactly one of --text or --input");
    }
    run_tokenize(*opt);
  });
}

}  // namespace align
