// A chat format: a model's Jinja chat template (data/jinja_template.h) with its tokenizer, turning
// messages into token ids as transformers' apply_chat_template(..., tokenize=True) does, with the
// assistant mask, the generation prompt and the tokens that end a turn. Which template a model
// uses is read from its folder (data/chat_template.h); docs/chat_formats.md has the details.
//
// Ids: the template's output is encoded whole, as apply_chat_template encodes it
// (add_special_tokens=False; added tokens' lstrip/rstrip apply), except that special tokens are
// never matched in text a user wrote (a message's content): "<|im_end|>" typed by a user stays
// plain text, where transformers would make it a control token. Roles are written as the
// template writes them (Phi-4-mini's '<|' + role + '|>' builds a control token from the role).
//
// Assistant mask (TRL's assistant_only_loss): the tokens of the template's {% generation %}
// spans, mapped to tokens as transformers' return_assistant_tokens_mask maps them (from the token
// holding a span's first byte to the token holding its last). A template without such spans is
// read by rendering growing prefixes of the conversation: an assistant message's turn is what
// the conversation up to and including it adds to the conversation before it with the
// generation prompt, up to its end-of-turn token (content and end-of-turn: Phi-4's
// <|im_end|>, ChatML's <|im_end|> without the newline after it, Phi-4-mini's <|end|> without the
// closing eos).
//
// End of turn: the special token the template writes right after an assistant message's content
// (found by rendering a two-message conversation), when there is one. stop_ids() is it, then the
// tokenizer's eos; the samplers add the model's config and generation_config eos ids
// (rollout/stop_tokens.h).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/jinja_template.h"
#include "data/tokenizer.h"

namespace align {

struct ChatMessage {
  std::string role;
  std::string content;
  // The message's other keys, given to the template as they are (tool_calls, name, tool_call_id,
  // reasoning_content, a Phi-4-mini system message's "tools", ...).
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
};

struct ChatTokens {
  std::vector<TokenId> ids;
  // 1 for tokens of assistant turns (see above), 0 for everything else.
  std::vector<uint8_t> assistant_mask;
};

class ChatFormat {
 public:
  // `tmpl` over `tok`. `origin` says where the template came from ("the chat template in
  // DIR/chat_template.jinja", "model.chat_format phi4"), for messages. template_kwargs: extra
  // variables every rendering gets (apply_chat_template's **kwargs: enable_thinking,
  // date_string, ...); they override the tokenizer's bos_token / eos_token / pad_token strings.
  static ChatFormat make(JinjaTemplate tmpl, const Tokenizer& tok, std::string origin,
                         const nlohmann::ordered_json& template_kwargs = nullptr);

  // The conversation's ids and assistant mask. tools: the conversation's tool schemas (a JSON
  // list, apply_chat_template's tools=), or null. Throws InputError naming the template file and
  // line when the template raises or fails.
  ChatTokens render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                    const nlohmann::ordered_json* tools = nullptr) const;

  // The special token that ends an assistant turn, when the template writes one.
  std::optional<TokenId> end_id() const { return end_; }
  // end_id() first, then the tokenizer's eos (no duplicates).
  const std::vector<TokenId>& stop_ids() const { return stop_ids_; }

  const std::string& origin() const { return origin_; }
  const Tokenizer& tokenizer() const { return tok_; }
  const JinjaTemplate& chat_template() const { return template_; }

 private:
  ChatFormat(JinjaTemplate tmpl, const Tokenizer& tok) : template_(std::move(tmpl)), tok_(tok) {}
  nlohmann::ordered_json variables(const std::vector<ChatMessage>& messages, bool generation,
                                   const nlohmann::ordered_json* tools) const;
  std::string render_text(const std::vector<ChatMessage>& messages, bool generation,
                          const nlohmann::ordered_json* tools) const;
  // Byte spans of the assistant turns in `text` (the whole conversation), from prefixes.
  std::vector<TextSpan> turns_from_prefixes(const std::vector<ChatMessage>& messages,
                                            const nlohmann::ordered_json* tools,
                                            const std::string& text) const;

  JinjaTemplate template_;
  Tokenizer tok_;
  std::string origin_;
  // bos_token, eos_token, pad_token, then the template kwargs.
  nlohmann::ordered_json constants_ = nlohmann::ordered_json::object();
  std::optional<TokenId> end_;
  std::vector<TokenId> stop_ids_;
};

// Parses [{"role": "...", "content": "...", ...}, ...]. role: system, user, assistant or tool;
// content: a string. Other keys are kept in ChatMessage::extra. Throws InputError naming the bad
// index and field ("messages[2].content: expected a string, got null"). Key order reaches the
// template (its tojson writes it) only from an ordered_json.
std::vector<ChatMessage> parse_chat_messages(const nlohmann::ordered_json& messages);
std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& messages);

// A record's "tools" (a list of tool schemas) for the template; nullopt when absent or null.
// Throws InputError "tools: expected a list, got ..." otherwise.
std::optional<nlohmann::ordered_json> parse_chat_tools(const nlohmann::ordered_json& record);
std::optional<nlohmann::ordered_json> parse_chat_tools(const nlohmann::json& record);

}  // namespace align
