#include "rollout/stop_tokens.h"

#include <algorithm>
#include <optional>

namespace align {

std::vector<TokenId> default_stop_token_ids(const ChatFormat* chat, const Tokenizer* tokenizer,
                                            const ModelConfig& config) {
  std::vector<TokenId> ids;
  auto add = [&](std::optional<TokenId> id) {
    if (id && std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  };
  if (chat) {
    for (TokenId id : chat->stop_ids())
      add(id);
  }
  if (tokenizer) add(tokenizer->eos_id());
  for (int64_t id : config.eos_token_ids)
    add(static_cast<TokenId>(id));
  for (int64_t id : config.generation_eos_token_ids)
    add(static_cast<TokenId>(id));
  return ids;
}

}  // namespace align
