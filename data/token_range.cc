#include "data/token_range.h"

#include "common/error.h"

namespace align {

namespace {

bool inside(int64_t id, int64_t vocab_size) {
  return id >= 0 && id < vocab_size;
}

}  // namespace

void check_token_id(int64_t id, int64_t vocab_size, const std::string& what) {
  if (inside(id, vocab_size)) return;
  throw InputError(what + ": token id " + std::to_string(id) +
                   " is outside the model's vocabulary [0, " + std::to_string(vocab_size) +
                   ") (no embedding row; are the tokenizer or the ids from another model?)");
}

void check_token_ids(const std::vector<TokenId>& ids, int64_t vocab_size, const std::string& what) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!inside(ids[i], vocab_size)) {
      check_token_id(ids[i], vocab_size, what + ", token " + std::to_string(i));
    }
  }
}

}  // namespace align
