// Input records shared by the commands that take token sequences (`tokenize`, `logprobs`, later
// `generate`): a JSONL line carries exactly one of
//   "token_ids": [int, ...]                      used as is (checked against the vocabulary)
//   "text": "..."                                 encoded as plain text (special tokens recognised,
//   as
//                                                 in Hugging Face); with chat=true, wrapped as one
//                                                 user turn followed by the generation prompt
//   "messages": [{"role", "content"}, ...]        the model's chat template (data/chat_format.h),
//                                                 with the record's "tools" if any; the
//                                                 generation prompt is added when the last
//                                                 message is not the assistant's
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/chat_template.h"
#include "data/tokenizer.h"

namespace align {

struct TokenInput {
  std::vector<TokenId> ids;
  std::optional<std::vector<uint8_t>> assistant_mask;  // present when the chat format was applied
};

// Throws InputError naming the field when the record has none or several of the keys, or a token
// id outside [0, vocab_size) (check_token_ids, data/token_range.h).
TokenInput read_token_input(const nlohmann::json& record, const Tokenizer* tokenizer, bool chat,
                            int64_t vocab_size, const LazyChatFormat& format);

// Same for a --text flag.
TokenInput text_token_input(const std::string& text, const Tokenizer& tokenizer, bool chat,
                            const LazyChatFormat& format);

// The model directory's tokenizer when it has one (tokenizer.json or vocab.json); a broken one is
// an error, a missing one is not (records must then carry "token_ids").
std::optional<Tokenizer> load_optional_tokenizer(const std::string& dir);

}  // namespace align
