// The integer type of a token id, shared by the tokenizer, the datasets and the models.
#pragma once

#include <cstdint>

namespace align {

using TokenId = int32_t;

}  // namespace align
