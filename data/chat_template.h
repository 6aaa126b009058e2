// A model's own chat template: where it is read from, which template a command uses
// (the model's own, or a published Phi template the user forced), and what a trained model's
// folder is given.
//
// Where: <dir>/chat_template.jinja when present (transformers reads it over the config's key),
// else "chat_template" of <dir>/tokenizer_config.json (a string, or a list of {"name",
// "template"} whose "default" entry is used).
//
// Which (model.chat_format / --chat-format):
//   auto  the model's own template, whatever its layout; a folder without one uses Phi-4's
//         published template (align's default);
//   phi4  microsoft/phi-4's published template; phi3: microsoft/Phi-4-mini-instruct's (the
//         Phi-3 family's role tokens), whatever the folder holds.
// A template is chosen only when something is rendered (LazyChatFormat): token ids, plain text
// and prompt/completion text need none.
#pragma once

#include <mutex>
#include <optional>
#include <string>

#include "common/chat_format_kind.h"
#include "data/chat_format.h"
#include "data/tokenizer.h"

namespace align {

struct ChatTemplate {
  std::string text;   // empty: the folder has none
  std::string where;  // "DIR/chat_template.jinja" or "DIR/tokenizer_config.json: chat_template"
};

// Throws InputError for a tokenizer_config.json that is not JSON or a chat_template of the wrong
// type.
ChatTemplate read_chat_template(const std::string& dir);

// The templates of model.chat_format phi4 / phi3, as published (docs/chat_formats.md).
const std::string& published_chat_template(ChatFormatKind kind);

// The chat format of the model in `dir` for `tok` (loaded from `dir`), as `choice` says.
// choice_key names the setting in messages ("model.chat_format", "--chat-format"). Throws
// InputError naming the file and line of a template the engine cannot parse.
ChatFormat select_chat_format(const std::string& dir, const Tokenizer& tok, ChatFormatKind choice,
                              const std::string& choice_key);

// The chat format of a command's model, chosen when first needed, so inputs of text or token
// ids never need one (nor a tokenizer). Thread-safe.
class LazyChatFormat {
 public:
  // tokenizer may be null (a model folder without one): get() then throws.
  LazyChatFormat(std::string dir, const Tokenizer* tokenizer, ChatFormatKind choice,
                 std::string choice_key);
  // Throws InputError (no tokenizer, a template that cannot be parsed).
  const ChatFormat& get() const;
  // Whether get() has chosen a format (something was rendered).
  bool used() const;
  // The model's tokenizer; throws InputError when it has none.
  const Tokenizer& tokenizer() const;
  ChatFormatKind choice() const { return choice_; }
  const std::string& choice_key() const { return choice_key_; }

 private:
  std::string dir_;
  const Tokenizer* tokenizer_;
  ChatFormatKind choice_;
  std::string choice_key_;
  mutable std::mutex mutex_;
  mutable std::optional<ChatFormat> format_;
};

// What a trained model's folder `dir` (tokenizer files already copied there from the base) says
// its template is: the base model's own, as copied, unless the user forced a format and it was
// used, when the forced template is written (to chat_template.jinja when present or when there
// is no tokenizer_config.json, and to tokenizer_config.json's "chat_template" when it has the key
// or there is no .jinja). Returns a line for the run's log when it wrote one, else "".
std::string write_chat_template(const std::string& dir, const LazyChatFormat& format);

}  // namespace align
