// Chat formats as values: what a model's chat template renders, built directly as token ids, with
// the mask of the assistant turns, the generation prompt and the tokens that end a turn. Which
// format a model uses is read from its own template (data/chat_template.h); docs/chat_formats.md
// has both templates and their sources.
//
//   phi4 (microsoft/phi-4; no BOS, no newlines)
//     per message   <|im_start|>{role}<|im_sep|>{content}<|im_end|>
//     generation    <|im_start|>assistant<|im_sep|>
//     end of turn   <|im_end|>; stops also on <|endoftext|>
//   phi3 (microsoft/Phi-4-mini-instruct, the Phi-3 family's role tokens; no BOS, no newlines)
//     per message   <|{role}|>{content}<|end|>
//     a system message with tools   <|system|>{content}<|tool|>{tools}<|/tool|><|end|>
//     generation    <|assistant|>; without it the conversation ends with the tokenizer's eos
//                   (the template's {{ eos_token }}), unless the model's template has no such
//                   ending
//     end of turn   <|end|>; stops also on the tokenizer's eos
//
// Role, content and tools are each encoded with allow_special=false, so text in a message can
// never become a control token ("<|im_end|>" typed by a user stays plain text).
//
// Whitespace next to the control tokens is kept, as tiktoken does. Hugging Face's tokenizer.json
// marks Phi-4's special tokens lstrip/rstrip, so rendering the chat template to a string and
// encoding it (transformers' apply_chat_template) swallows such whitespace: content " hi " comes
// out as "hi" there. Keeping it means what the model is trained on is exactly what it was given.
// For content without leading/trailing whitespace (and without control-token text) the ids equal
// apply_chat_template's (golden tests for both formats).
//
// The assistant mask marks what TRL's assistant_only_loss marks (the {% generation %} span of its
// templates): an assistant message's content and its end-of-turn token. Headers, the generation
// prompt and phi3's closing eos are 0.
//
// phi4 writes any role string as is (Phi-4's own template silently drops roles other than system,
// user and assistant; this does not drop messages). phi3 writes <|{role}|> as its template does
// and needs that token in the vocabulary. Tools on a message the format cannot render (any message
// in phi4, a non-system message in phi3) are an error, never dropped.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/chat_format_kind.h"
#include "data/tokenizer.h"

namespace align {

struct ChatMessage {
  std::string role;
  std::string content;
  std::optional<std::string> tools = std::nullopt;  // a system message's tools, as JSON text
};

struct ChatTokens {
  std::vector<TokenId> ids;
  // 1 for tokens of assistant turns: their content and their end-of-turn token; 0 for everything
  // else, including role headers, the generation prompt and a closing eos.
  std::vector<uint8_t> assistant_mask;
};

class ChatFormat {
 public:
  // The format `kind` (not kAuto) over `tok`'s control tokens. `origin` says how the format was
  // chosen ("the chat_template of tokenizer_config.json", "model.chat_format"), for messages.
  // eos_at_end (phi3 only): the conversation without a generation prompt ends with the eos.
  // Throws InputError naming the tokenizer, the missing token and `origin`.
  static ChatFormat make(ChatFormatKind kind, const Tokenizer& tok, const std::string& origin,
                         bool eos_at_end = true);

  ChatFormatKind kind() const { return kind_; }
  const char* name() const { return enum_name(kind_); }
  bool eos_at_end() const { return eos_at_end_; }
  const std::string& origin() const { return origin_; }
  const Tokenizer& tokenizer() const { return tok_; }

  // Throws InputError "messages[i].tools: ..." for tools the format cannot render, and for a phi3
  // role without its <|role|> token.
  ChatTokens render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  // The token that ends every turn (<|im_end|>, <|end|>).
  TokenId end_id() const { return end_; }
  // end_id() first, then the other ids generation stops on (no duplicates).
  const std::vector<TokenId>& stop_ids() const { return stop_ids_; }

 private:
  explicit ChatFormat(const Tokenizer& tok) : tok_(tok) {}
  void render_phi4(const std::vector<ChatMessage>& messages, bool gen, ChatTokens& out) const;
  void render_phi3(const std::vector<ChatMessage>& messages, bool gen, ChatTokens& out) const;

  ChatFormatKind kind_ = ChatFormatKind::kPhi4;
  bool eos_at_end_ = false;
  std::string origin_;
  Tokenizer tok_;
  TokenId end_ = 0;
  TokenId start_ = 0, sep_ = 0;        // phi4: <|im_start|>, <|im_sep|>
  TokenId tool_ = 0, tool_close_ = 0;  // phi3: <|tool|>, <|/tool|> (when the vocabulary has them)
  bool has_tool_tokens_ = false;
  std::optional<TokenId> eos_;  // phi3: the tokenizer's eos
  std::vector<TokenId> stop_ids_;
};

// Parses [{"role": "...", "content": "...", "tools": "..."}, ...] ("tools" optional: a string or
// null). Throws InputError naming the bad index and field ("messages[2].content: expected a
// string, got null"). Other keys are ignored.
std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& messages);

}  // namespace align
