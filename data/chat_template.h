// A model's own chat template: where it is read from, which chat format (data/chat_format.h) it
// is, and writing the template of the format a model was trained with into its output folder.
//
// Where: <dir>/chat_template.jinja when present (transformers reads it over the config's key),
// else "chat_template" of <dir>/tokenizer_config.json (a string, or a list of {"name",
// "template"} whose "default" entry is used).
//
// Which: recognised by its markers, not by equality, so templates that differ only in layout
// match. A template is read as Jinja the way transformers runs it (trim_blocks, lstrip_blocks):
//   - it must emit no text of its own outside its {{ }} / {% %} tags (whitespace that Jinja's
//     trimming or a '-' removes does not count), and none of its string literals may hold a
//     newline (Phi-3-mini's "<|user|>\n" layout is another format), and it must not use
//     bos_token (neither format starts with one);
//   - phi4: its literals hold <|im_start|>, <|im_sep|> and <|im_end|>, and it does not use
//     eos_token;
//   - phi3: its literals hold <|end|> and <|assistant|> and not <|im_start|>; when it uses
//     eos_token, a conversation without a generation prompt ends with the eos (Phi-4-mini's
//     {% else %}{{ eos_token }}).
// Anything else is not recognised.
#pragma once

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

struct ChatTemplateMatch {
  ChatFormatKind kind = ChatFormatKind::kPhi4;
  bool eos_at_end = false;  // phi3: ends a conversation without generation prompt with the eos
};
std::optional<ChatTemplateMatch> recognise_chat_template(const std::string& text);

// The templates align writes for a format it was told to use (model.chat_format, --chat-format):
// microsoft/phi-4's and microsoft/Phi-4-mini-instruct's, as published (docs/chat_formats.md).
const std::string& published_chat_template(ChatFormatKind kind);

// The format of the model in `dir`, for `tok` (loaded from `dir`):
//   choice kAuto: its template's format; a folder without a template is phi4, align's default;
//                 a template that is not recognised throws InputError quoting its start and
//                 naming `choice_key` and --chat-format;
//   phi4 / phi3:  that format whatever the template (the model's template is then replaced in
//                 what align writes: write_chat_template).
// Throws InputError when `tok` lacks a control token of the format.
ChatFormat select_chat_format(const std::string& dir, const Tokenizer& tok, ChatFormatKind choice,
                              const std::string& choice_key);

// Makes the chat template of the model folder `dir` (tokenizer files already copied there) the
// template of `format`: left as is when it already is that format, else the published template
// is written to chat_template.jinja (when present, or when there is no tokenizer_config.json) and
// to tokenizer_config.json's "chat_template" (when that file has the key or there is no .jinja).
void write_chat_template(const std::string& dir, const ChatFormat& format);

}  // namespace align
