// The one check of token ids against a model's vocabulary (its embedding rows).
//
// A tokenizer may hold more ids than the model has rows (added tokens past the model's
// vocab_size). Every command accepts it, and each sequence is checked where it is built (datasets,
// query files, command inputs, the rollout engine's requests), so that only a sequence that uses
// such an id is refused, by every command alike.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/token_id.h"

namespace align {

// Throws InputError "<what>: token id <id> is outside the model's vocabulary [0, <vocab_size>)".
void check_token_id(int64_t id, int64_t vocab_size, const std::string& what);
// check_token_id on each id of a sequence; the message names the position: "<what>, token <i>:
// ...".
void check_token_ids(const std::vector<TokenId>& ids, int64_t vocab_size, const std::string& what);

}  // namespace align
