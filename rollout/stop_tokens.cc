#include "rollout/stop_tokens.h"

#include <algorithm>
#include <optional>

namespace align {

std::vector<TokenId> default_stop_token_ids(const Tokenizer* tokenizer, const ModelConfig& config) {
  std::vector<TokenId> ids;
  auto add = [&](std::optional<TokenId> id) {
    if (id && std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  };
  if (tokenizer) {
    add(tokenizer->eos_id());
    add(tokenizer->token_to_id("<|im_end|>"));
    add(tokenizer->token_to_id("<|endoftext|>"));
  }
  for (int64_t id : config.eos_token_ids)
    add(static_cast<TokenId>(id));
  return ids;
}

}  // namespace align
