#include "data/chat_template.h"

#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"

namespace align {

namespace fs = std::filesystem;

namespace {

// microsoft/phi-4, tokenizer_config.json "chat_template".
const std::string kPhi4Template =
    "{% for message in messages %}{% if (message['role'] == 'system') %}"
    "{{'<|im_start|>system<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'user') %}"
    "{{'<|im_start|>user<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% elif (message['role'] == 'assistant') %}"
    "{{'<|im_start|>assistant<|im_sep|>' + message['content'] + '<|im_end|>'}}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant<|im_sep|>' }}{% endif %}";

// microsoft/Phi-4-mini-instruct, tokenizer_config.json "chat_template".
const std::string kPhi3Template =
    "{% for message in messages %}{% if message['role'] == 'system' and 'tools' in message and "
    "message['tools'] is not none %}{{ '<|' + message['role'] + '|>' + message['content'] + "
    "'<|tool|>' + message['tools'] + '<|/tool|>' + '<|end|>' }}{% else %}{{ '<|' + "
    "message['role'] + '|>' + message['content'] + '<|end|>' }}{% endif %}{% endfor %}{% if "
    "add_generation_prompt %}{{ '<|assistant|>' }}{% else %}{{ eos_token }}{% endif %}";

}  // namespace

ChatTemplate read_chat_template(const std::string& dir) {
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  if (fs::exists(jinja)) return {read_file(jinja.string()), jinja.string()};
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  if (!fs::exists(config_path)) return {};
  const nlohmann::json config = read_json_file(config_path.string());
  const std::string where = config_path.string() + ": chat_template";
  if (!config.is_object() || !config.contains("chat_template")) return {};
  const nlohmann::json& value = config.at("chat_template");
  if (value.is_null()) return {};
  if (value.is_string()) return {value.get<std::string>(), where};
  if (value.is_array()) {
    for (const nlohmann::json& entry : value) {
      if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
          entry.at("template").is_string()) {
        return {entry.at("template").get<std::string>(), where + " (\"default\")"};
      }
    }
    throw InputError(where + ": a list of templates without a \"default\" one");
  }
  throw InputError(where + ": expected a string or a list of {\"name\", \"template\"}, got " +
                   json_excerpt(value, 80));
}

const std::string& published_chat_template(ChatFormatKind kind) {
  if (kind == ChatFormatKind::kAuto) throw Error("published_chat_template: kAuto");
  return kind == ChatFormatKind::kPhi3 ? kPhi3Template : kPhi4Template;
}

// The control tokens of a published Phi template, which a tokenizer must have when align renders
// with it (else its markers would be encoded as plain text). `how` says why that template.
void require_control_tokens(const Tokenizer& tok, ChatFormatKind kind, const std::string& how) {
  static const std::vector<std::string> kPhi4Tokens = {"<|im_start|>", "<|im_sep|>", "<|im_end|>"};
  static const std::vector<std::string> kPhi3Tokens = {"<|system|>", "<|user|>", "<|assistant|>",
                                                       "<|end|>"};
  std::string missing;
  for (const std::string& token : kind == ChatFormatKind::kPhi3 ? kPhi3Tokens : kPhi4Tokens) {
    if (!tok.token_to_id(token)) missing += (missing.empty() ? "" : ", ") + token;
  }
  if (!missing.empty()) {
    throw InputError(tok.source() + ": no token " + missing + ", which " + how +
                     " needs (model.chat_format / --chat-format: auto uses the model's own "
                     "chat template)");
  }
}

ChatFormat select_chat_format(const std::string& dir, const Tokenizer& tok, ChatFormatKind choice,
                              const std::string& choice_key) {
  if (choice != ChatFormatKind::kAuto) {
    const std::string origin = choice_key + " " + enum_name(choice);
    require_control_tokens(tok, choice, origin + " (the published template)");
    return ChatFormat::make(JinjaTemplate::compile(published_chat_template(choice),
                                                   "the published template of " + origin),
                            tok, origin);
  }
  const ChatTemplate found = read_chat_template(dir);
  if (found.text.empty()) {
    require_control_tokens(tok, ChatFormatKind::kPhi4,
                           dir + " has no chat template, so align's default, Phi-4's template,");
    return ChatFormat::make(JinjaTemplate::compile(kPhi4Template, "Phi-4's published template"),
                            tok,
                            "align's default, Phi-4's template (" + dir + " has no chat template)");
  }
  return ChatFormat::make(JinjaTemplate::compile(found.text, found.where), tok,
                          "the chat template in " + found.where);
}

LazyChatFormat::LazyChatFormat(std::string dir, const Tokenizer* tokenizer, ChatFormatKind choice,
                               std::string choice_key)
    : dir_(std::move(dir)),
      tokenizer_(tokenizer),
      choice_(choice),
      choice_key_(std::move(choice_key)) {}

const ChatFormat& LazyChatFormat::get() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!format_) {
    format_ = select_chat_format(dir_, tokenizer(), choice_, choice_key_);
  }
  return *format_;
}

const Tokenizer& LazyChatFormat::tokenizer() const {
  if (!tokenizer_) throw InputError(dir_ + ": no tokenizer (tokenizer.json or vocab.json)");
  return *tokenizer_;
}

bool LazyChatFormat::used() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return format_.has_value();
}

std::string write_chat_template(const std::string& dir, const LazyChatFormat& format) {
  if (format.choice() == ChatFormatKind::kAuto || !format.used()) return "";
  const std::string& text = published_chat_template(format.choice());
  const ChatTemplate current = read_chat_template(dir);
  if (current.text == text) return "";
  const fs::path jinja = fs::path(dir) / "chat_template.jinja";
  const fs::path config_path = fs::path(dir) / "tokenizer_config.json";
  const bool has_jinja = fs::exists(jinja), has_config = fs::exists(config_path);
  if (has_jinja || !has_config) write_file_atomic(jinja.string(), text);
  if (has_config) {
    nlohmann::json config = read_json_file(config_path.string());
    if (config.is_object() && (config.contains("chat_template") || !has_jinja)) {
      config["chat_template"] = text;
      write_file_atomic(config_path.string(), config.dump(2) + "\n");
    }
  }
  return dir + ": the chat template is " + format.choice_key() + " " + enum_name(format.choice()) +
         "'s published template, which the run was trained with" +
         (current.text.empty() ? "" : " (it replaces the base model's own, " + current.where + ")");
}

}  // namespace align
