// The token ids that end a completion: Phi-4 stops on <|im_end|> and also accepts <|endoftext|>
// (docs/tokenizer.md), plus the tokenizer's eos and the model config's eos ids.
#pragma once

#include <vector>

#include "data/token_id.h"
#include "data/tokenizer.h"
#include "model/config.h"

namespace align {

// Without a tokenizer (null), only the config's eos ids. No duplicates.
std::vector<TokenId> default_stop_token_ids(const Tokenizer* tokenizer, const ModelConfig& config);

}  // namespace align
