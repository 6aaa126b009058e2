// Phi-4's chat format, built directly as token ids (no BOS, no newlines):
//   per message   <|im_start|>{role}<|im_sep|>{content}<|im_end|>
//   then, if add_generation_prompt,   <|im_start|>assistant<|im_sep|>
//
// Role and content are each encoded with allow_special=false, so text in a message can never
// become a control token ("<|im_end|>" typed by a user stays plain text).
//
// Whitespace next to the control tokens is kept, as tiktoken does. Hugging Face's tokenizer.json
// marks Phi-4's special tokens lstrip/rstrip, so rendering the chat template to a string and
// encoding it (transformers' apply_chat_template) swallows such whitespace: content " hi " comes
// out as "hi" there. Keeping it means what the model is trained on is exactly what it was given.
// For content without leading/trailing whitespace (and without control-token text) the ids equal
// apply_chat_template's (golden test).
//
// Any role string is written as is. Phi-4's own template silently drops roles other than system,
// user and assistant; this function does not drop messages.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/tokenizer.h"

namespace align {

struct ChatMessage {
  std::string role;
  std::string content;
};

struct ChatTokens {
  std::vector<TokenId> ids;
  // 1 for tokens of assistant turns: their content and their <|im_end|>; 0 for everything else,
  // including the <|im_start|>assistant<|im_sep|> header and the generation prompt.
  std::vector<uint8_t> assistant_mask;
};

// Throws InputError naming the tokenizer's source when a control token is missing.
ChatTokens apply_chat_format(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                             bool add_generation_prompt);

// Parses [{"role": "...", "content": "..."}, ...]. Throws InputError naming the bad index and
// field ("messages[2].content: expected a string, got null"). Other keys are ignored.
std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& messages);

}  // namespace align
