#include "data/chat_format.h"

#include <algorithm>

#include "common/error.h"
#include "data/json_fields.h"

namespace align {

namespace {

const char* format_title(ChatFormatKind kind) {
  return kind == ChatFormatKind::kPhi3 ? "Phi-3 (Phi-4-mini)" : "Phi-4";
}

TokenId control_token(const Tokenizer& tok, ChatFormatKind kind, const std::string& origin,
                      const std::string& name) {
  const auto id = tok.token_to_id(name);
  if (!id) {
    throw InputError(tok.source() + ": no token \"" + name + "\", which the " + format_title(kind) +
                     " chat format needs (the format comes from " + origin +
                     "; model.chat_format or --chat-format picks another: phi4 or phi3)");
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

std::string at(size_t i) {
  return "messages[" + std::to_string(i) + "]";
}

}  // namespace

ChatFormat ChatFormat::make(ChatFormatKind kind, const Tokenizer& tok, const std::string& origin,
                            bool eos_at_end) {
  if (kind == ChatFormatKind::kAuto) throw Error("ChatFormat::make: kAuto is not a format");
  ChatFormat f(tok);
  f.kind_ = kind;
  f.origin_ = origin;
  std::vector<std::optional<TokenId>> stops;
  if (kind == ChatFormatKind::kPhi4) {
    f.start_ = control_token(tok, kind, origin, "<|im_start|>");
    f.sep_ = control_token(tok, kind, origin, "<|im_sep|>");
    f.end_ = control_token(tok, kind, origin, "<|im_end|>");
    stops = {f.end_, tok.token_to_id("<|endoftext|>")};
  } else {
    f.end_ = control_token(tok, kind, origin, "<|end|>");
    for (const char* role : {"<|system|>", "<|user|>", "<|assistant|>"})
      control_token(tok, kind, origin, role);
    const auto tool = tok.token_to_id("<|tool|>"), tool_close = tok.token_to_id("<|/tool|>");
    f.has_tool_tokens_ = tool && tool_close;
    if (f.has_tool_tokens_) f.tool_ = *tool, f.tool_close_ = *tool_close;
    f.eos_at_end_ = eos_at_end;
    f.eos_ = tok.eos_id();
    if (eos_at_end && !f.eos_) {
      throw InputError(tok.source() +
                       ": the tokenizer has no eos token (\"eos_token\" in "
                       "tokenizer_config.json), which the Phi-3 (Phi-4-mini) chat format ends a "
                       "conversation with");
    }
    stops = {f.end_, f.eos_};
  }
  for (const auto& id : stops) {
    if (id && std::find(f.stop_ids_.begin(), f.stop_ids_.end(), *id) == f.stop_ids_.end())
      f.stop_ids_.push_back(*id);
  }
  return f;
}

ChatTokens ChatFormat::render(const std::vector<ChatMessage>& messages,
                              bool add_generation_prompt) const {
  ChatTokens out;
  if (kind_ == ChatFormatKind::kPhi4) {
    render_phi4(messages, add_generation_prompt, out);
  } else {
    render_phi3(messages, add_generation_prompt, out);
  }
  return out;
}

void ChatFormat::render_phi4(const std::vector<ChatMessage>& messages, bool gen,
                             ChatTokens& out) const {
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    if (message.tools) {
      throw InputError(at(i) +
                       ".tools: the Phi-4 chat format has no place for tools (Phi-4's template "
                       "drops them); only the Phi-3 (Phi-4-mini) format renders a system "
                       "message's tools");
    }
    const uint8_t mask = message.role == "assistant" ? 1 : 0;
    append(out, start_, 0);
    append(out, tok_.encode(message.role, /*allow_special=*/false), 0);
    append(out, sep_, 0);
    append(out, tok_.encode(message.content, /*allow_special=*/false), mask);
    append(out, end_, mask);
  }
  if (gen) {
    append(out, start_, 0);
    append(out, tok_.encode("assistant", /*allow_special=*/false), 0);
    append(out, sep_, 0);
  }
}

void ChatFormat::render_phi3(const std::vector<ChatMessage>& messages, bool gen,
                             ChatTokens& out) const {
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    const uint8_t mask = message.role == "assistant" ? 1 : 0;
    const std::string header = "<|" + message.role + "|>";
    const auto header_id = tok_.token_to_id(header);
    if (!header_id) {
      throw InputError(at(i) + ".role: \"" + message.role + "\" needs the token \"" + header +
                       "\" in the Phi-3 (Phi-4-mini) chat format, and " + tok_.source() +
                       " has none");
    }
    append(out, *header_id, 0);
    append(out, tok_.encode(message.content, /*allow_special=*/false), mask);
    if (message.tools) {
      if (message.role != "system") {
        throw InputError(at(i) +
                         ".tools: only a system message's tools are rendered (Phi-4-mini's "
                         "template), this is a \"" +
                         message.role + "\" message");
      }
      if (!has_tool_tokens_) {
        throw InputError(at(i) + ".tools: " + tok_.source() +
                         " has no \"<|tool|>\" and \"<|/tool|>\" tokens to wrap tools in");
      }
      append(out, tool_, 0);
      append(out, tok_.encode(*message.tools, /*allow_special=*/false), 0);
      append(out, tool_close_, 0);
    }
    append(out, end_, mask);
  }
  if (gen) {
    append(out, tok_.token_to_id("<|assistant|>").value(), 0);
  } else if (eos_at_end_) {
    append(out, *eos_, 0);
  }
}

std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& messages) {
  if (!messages.is_array()) {
    throw InputError("messages: expected an array of {\"role\", \"content\"} objects, got " +
                     describe_json(messages));
  }
  std::vector<ChatMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = at(i);
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
    if (auto it = m.find("tools"); it != m.end() && !it->is_null()) {
      if (!it->is_string()) {
        throw InputError(where +
                         ".tools: expected a string (the tools as JSON text, which Phi-4-mini's "
                         "template writes between <|tool|> and <|/tool|>) or null, got " +
                         describe_json(*it));
      }
      message.tools = it->get<std::string>();
    }
    out.push_back(std::move(message));
  }
  return out;
}

}  // namespace align
