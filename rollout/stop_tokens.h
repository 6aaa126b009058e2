// The token ids that end a completion: the chat template's end of turn when prompts were rendered
// with it (data/chat_format.h: <|im_end|>, <|end|>, <|eot_id|>, ...), then the tokenizer's eos,
// then the eos ids of the model's config.json and generation_config.json.
#pragma once

#include <vector>

#include "data/chat_format.h"
#include "data/token_id.h"
#include "data/tokenizer.h"
#include "model/config.h"

namespace align {

// chat: the format the prompts were rendered with, or null (token ids, plain text); tokenizer:
// null when the model has none. No duplicates.
std::vector<TokenId> default_stop_token_ids(const ChatFormat* chat, const Tokenizer* tokenizer,
                                            const ModelConfig& config);

}  // namespace align
