#include "align/token_input.h"

#include <filesystem>

#include "common/error.h"
#include "common/json_parse.h"
#include "data/token_range.h"

namespace align {

TokenInput text_token_input(const std::string& text, const Tokenizer& tokenizer, bool chat,
                            const LazyChatFormat& format) {
  if (!chat) return {tokenizer.encode(text), std::nullopt};
  ChatTokens tokens = format.get().render({{"user", text, {}}}, true);
  return {std::move(tokens.ids), std::move(tokens.assistant_mask)};
}

TokenInput read_token_input(const nlohmann::json& record, const Tokenizer* tokenizer, bool chat,
                            int64_t vocab_size, const LazyChatFormat& format) {
  if (!record.is_object())
    throw InputError("expected a JSON object, found " + json_excerpt(record));
  const int keys = static_cast<int>(record.contains("token_ids")) +
                   static_cast<int>(record.contains("text")) +
                   static_cast<int>(record.contains("messages"));
  if (keys != 1) {
    throw InputError("expected exactly one of \"token_ids\", \"text\" or \"messages\", found " +
                     std::to_string(keys));
  }
  if (record.contains("token_ids")) {
    const auto& ids = record["token_ids"];
    if (!ids.is_array()) throw InputError("\"token_ids\" must be an array of integers");
    TokenInput input;
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!ids[i].is_number_integer()) {
        throw InputError("\"token_ids\"[" + std::to_string(i) + "] must be an integer, found " +
                         ids[i].dump());
      }
      const int64_t id = ids[i].get<int64_t>();
      check_token_id(id, vocab_size, "\"token_ids\"[" + std::to_string(i) + "]");
      input.ids.push_back(static_cast<TokenId>(id));
    }
    return input;
  }
  if (!tokenizer) {
    throw InputError(
        "this record needs a tokenizer (\"text\"/\"messages\"), but the model "
        "directory has none: pass \"token_ids\" instead");
  }
  TokenInput input;
  if (record.contains("text")) {
    if (!record["text"].is_string()) throw InputError("\"text\" must be a string");
    input = text_token_input(record["text"].get<std::string>(), *tokenizer, chat, format);
  } else {
    std::vector<ChatMessage> messages = parse_chat_messages(record["messages"]);
    if (messages.empty()) throw InputError("\"messages\" is empty");
    const bool generation_prompt = messages.back().role != "assistant";
    const std::optional<nlohmann::ordered_json> tools = parse_chat_tools(record);
    ChatTokens tokens = format.get().render(messages, generation_prompt, tools ? &*tools : nullptr);
    input = {std::move(tokens.ids), std::move(tokens.assistant_mask)};
  }
  check_token_ids(input.ids, vocab_size, record.contains("text") ? "\"text\"" : "\"messages\"");
  return input;
}

std::optional<Tokenizer> load_optional_tokenizer(const std::string& dir) {
  namespace fs = std::filesystem;
  if (!fs::exists(fs::path(dir) / "tokenizer.json") && !fs::exists(fs::path(dir) / "vocab.json")) {
    return std::nullopt;
  }
  return Tokenizer::load(dir);
}

}  // namespace align
