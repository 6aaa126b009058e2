#include "data/chat_format.h"

#include "common/error.h"
#include "data/json_fields.h"

namespace align {

namespace {

TokenId control_token(const Tokenizer& tok, const char* name) {
  const auto id = tok.token_to_id(name);
  if (!id) {
    throw InputError(tok.source() + ": no token \"" + name +
                     "\", which the Phi-4 chat format needs");
  }
  return *id;
}

void append(ChatTokens& out, const std::vector<TokenId>& ids, uint8_t mask) {
  out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  out.assistant_mask.insert(out.assistant_mask.end(), ids.size(), mask);
}

void append(ChatTokens& out, TokenId id, uint8_t mask) {
  out.ids.push_back(id);
  out.assistant_mask.push_back(mask);
}

}  // namespace

ChatTokens apply_chat_format(const Tokenizer& tok, const std::vector<ChatMessage>& messages,
                             bool add_generation_prompt) {
  const TokenId im_start = control_token(tok, "<|im_start|>");
  const TokenId im_sep = control_token(tok, "<|im_sep|>");
  const TokenId im_end = control_token(tok, "<|im_end|>");
  ChatTokens out;
  for (const ChatMessage& message : messages) {
    const uint8_t mask = message.role == "assistant" ? 1 : 0;
    append(out, im_start, 0);
    append(out, tok.encode(message.role, /*allow_special=*/false), 0);
    append(out, im_sep, 0);
    append(out, tok.encode(message.content, /*allow_special=*/false), mask);
    append(out, im_end, mask);
  }
  if (add_generation_prompt) {
    append(out, im_start, 0);
    append(out, tok.encode("assistant", /*allow_special=*/false), 0);
    append(out, im_sep, 0);
  }
  return out;
}

std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& messages) {
  if (!messages.is_array()) {
    throw InputError("messages: expected an array of {\"role\", \"content\"} objects, got " +
                     describe_json(messages));
  }
  std::vector<ChatMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = "messages[" + std::to_string(i) + "]";
    const nlohmann::json& m = messages[i];
    if (!m.is_object()) throw InputError(where + ": expected an object, got " + describe_json(m));
    ChatMessage message;
    for (const char* key : {"role", "content"}) {
      auto it = m.find(key);
      if (it == m.end()) throw InputError(where + "." + key + ": missing");
      if (!it->is_string()) {
        throw InputError(where + "." + key + ": expected a string, got " + describe_json(*it));
      }
      (std::string(key) == "role" ? message.role : message.content) = it->get<std::string>();
    }
    if (message.role != "system" && message.role != "user" && message.role != "assistant" &&
        message.role != "tool") {
      throw InputError(where + ".role: expected system, user, assistant or tool, found \"" +
                       message.role.substr(0, 40) + "\"");
    }
    out.push_back(std::move(message));
  }
  return out;
}

}  // namespace align
