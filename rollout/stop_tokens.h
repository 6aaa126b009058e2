// The token ids that end a completion: the chat format's (data/chat_format.h: its end-of-turn
// token first, <|im_end|> or <|end|>, then the others it stops on), plus the tokenizer's eos and
// the model config's eos ids.
#pragma once

#include <vector>

#include "data/chat_format.h"
#include "data/token_id.h"
#include "model/config.h"

namespace align {

// Without a chat format (null: no tokenizer), only the config's eos ids. No duplicates.
std::vector<TokenId> default_stop_token_ids(const ChatFormat* chat, const ModelConfig& config);

}  // namespace align
