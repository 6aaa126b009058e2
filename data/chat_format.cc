#include "data/chat_format.h"

#include <algorithm>

#include "common/error.h"
#include "data/json_fields.h"

namespace align {

namespace {

std::string at(size_t i) {
  return "messages[" + std::to_string(i) + "]";
}

nlohmann::ordered_json to_ordered(const nlohmann::json& value) {
  return nlohmann::ordered_json::parse(value.dump());
}

nlohmann::json to_plain(const nlohmann::ordered_json& value) {
  return nlohmann::json::parse(value.dump());
}

size_t common_prefix(const std::string& a, const std::string& b) {
  return static_cast<size_t>(std::mismatch(a.begin(), a.end(), b.begin(), b.end()).first -
                             a.begin());
}

// The index of the token that holds byte `pos` (ends: each token's end offset, increasing).
size_t token_at(const std::vector<size_t>& ends, size_t pos) {
  return static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), pos) - ends.begin());
}

}  // namespace

ChatFormat ChatFormat::make(JinjaTemplate tmpl, const Tokenizer& tok, std::string origin,
                            const nlohmann::ordered_json& template_kwargs) {
  ChatFormat f(std::move(tmpl), tok);
  f.origin_ = std::move(origin);
  // transformers gives a template the tokenizer's special tokens as strings.
  const std::pair<const char*, std::optional<TokenId>> specials[] = {
      {"bos_token", tok.bos_id()}, {"eos_token", tok.eos_id()}, {"pad_token", tok.pad_id()}};
  for (const auto& [name, id] : specials) {
    if (id) f.constants_[name] = tok.id_to_token(*id);
  }
  if (template_kwargs.is_object()) {
    for (auto it = template_kwargs.begin(); it != template_kwargs.end(); ++it) {
      f.constants_[it.key()] = it.value();
    }
  }
  // The end of turn: the first token after an assistant message's content, when it is special.
  try {
    const std::vector<ChatMessage> probe = {{"user", "Hi", {}}, {"assistant", "Hello", {}}};
    const RenderedTemplate r = f.template_.render(f.variables(probe, false, nullptr));
    if (!r.input.empty()) {
      const Tokenizer::Encoding enc = tok.encode_rendered(r.text, r.input);
      const size_t next = token_at(enc.ends, r.input.back().end);
      if (next < enc.ids.size() && tok.is_special(enc.ids[next])) f.end_ = enc.ids[next];
    }
  } catch (const InputError&) {
    // A template that cannot render this conversation has no end of turn found here; its errors
    // surface when it renders the user's conversations.
  }
  if (f.end_) f.stop_ids_.push_back(*f.end_);
  if (const auto eos = tok.eos_id(); eos && eos != f.end_) f.stop_ids_.push_back(*eos);
  return f;
}

nlohmann::ordered_json ChatFormat::variables(const std::vector<ChatMessage>& messages,
                                             bool generation,
                                             const nlohmann::ordered_json* tools) const {
  nlohmann::ordered_json v = nlohmann::ordered_json::object();
  nlohmann::ordered_json& list = v["messages"] = nlohmann::ordered_json::array();
  for (const ChatMessage& m : messages) {
    nlohmann::ordered_json message = {{"role", m.role}, {"content", m.content}};
    for (auto it = m.extra.begin(); it != m.extra.end(); ++it)
      message[it.key()] = it.value();
    list.push_back(std::move(message));
  }
  if (tools) v["tools"] = *tools;
  v["add_generation_prompt"] = generation;
  for (auto it = constants_.begin(); it != constants_.end(); ++it) {
    v[it.key()] = it.value();
  }
  return v;
}

std::string ChatFormat::render_text(const std::vector<ChatMessage>& messages, bool generation,
                                    const nlohmann::ordered_json* tools) const {
  return template_.render(variables(messages, generation, tools)).text;
}

std::vector<TextSpan> ChatFormat::turns_from_prefixes(const std::vector<ChatMessage>& messages,
                                                      const nlohmann::ordered_json* tools,
                                                      const std::string& text) const {
  std::vector<TextSpan> turns;
  for (size_t i = 0; i < messages.size(); ++i) {
    if (messages[i].role != "assistant") continue;
    const std::vector<ChatMessage> before(messages.begin(), messages.begin() + i);
    const std::vector<ChatMessage> upto(messages.begin(), messages.begin() + i + 1);
    const size_t begin = common_prefix(render_text(before, true, tools), text);
    const size_t end = common_prefix(render_text(upto, false, tools), text);
    if (end > begin) turns.push_back({begin, end});
  }
  return turns;
}

ChatTokens ChatFormat::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                              const nlohmann::ordered_json* tools) const {
  const RenderedTemplate r = template_.render(variables(messages, add_generation_prompt, tools));
  Tokenizer::Encoding enc = tok_.encode_rendered(r.text, r.input);
  ChatTokens out;
  out.ids = std::move(enc.ids);
  out.assistant_mask.assign(out.ids.size(), 0);
  const bool spans = template_.has_generation_blocks();
  for (const TextSpan& turn : spans ? r.generation : turns_from_prefixes(messages, tools, r.text)) {
    if (turn.end <= turn.begin) continue;
    // The first token is the one holding the turn's first byte (transformers' rule for
    // {% generation %} spans; a text token merging the end of the prompt with the content, such as
    // " Hello" after "[assistant]", is the model's to produce). In a turn read from prefixes, a
    // control token holding it only by the whitespace its rstrip took stays the prompt's.
    size_t first = token_at(enc.ends, turn.begin);
    const size_t starts = first == 0 ? 0 : enc.ends[first - 1];
    if (!spans && first < out.ids.size() && starts < turn.begin &&
        tok_.is_special(out.ids[first])) {
      ++first;
    }
    if (first >= out.ids.size()) continue;
    const size_t last = std::min(token_at(enc.ends, turn.end - 1), out.ids.size() - 1);
    for (size_t t = first; t <= last; ++t) {
      out.assistant_mask[t] = 1;
      // A turn read from prefixes ends at its end-of-turn token (what follows, such as ChatML's
      // newline or Phi-4-mini's closing eos, belongs to no turn).
      if (!spans && end_ && out.ids[t] == *end_) break;
    }
  }
  return out;
}

std::vector<ChatMessage> parse_chat_messages(const nlohmann::ordered_json& messages) {
  if (!messages.is_array()) {
    throw InputError("messages: expected an array of {\"role\", \"content\"} objects, got " +
                     describe_json(to_plain(messages)));
  }
  std::vector<ChatMessage> out;
  out.reserve(messages.size());
  for (size_t i = 0; i < messages.size(); ++i) {
    const std::string where = at(i);
    const nlohmann::ordered_json& m = messages[i];
    if (!m.is_object()) {
      throw InputError(where + ": expected an object, got " + describe_json(to_plain(m)));
    }
    ChatMessage message;
    for (const char* key : {"role", "content"}) {
      auto it = m.find(key);
      if (it == m.end()) throw InputError(where + "." + key + ": missing");
      if (!it->is_string()) {
        throw InputError(where + "." + key + ": expected a string, got " +
                         describe_json(to_plain(*it)));
      }
      (std::string(key) == "role" ? message.role : message.content) = it->get<std::string>();
    }
    if (message.role != "system" && message.role != "user" && message.role != "assistant" &&
        message.role != "tool") {
      throw InputError(where + ".role: expected system, user, assistant or tool, found \"" +
                       message.role.substr(0, 40) + "\"");
    }
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (it.key() != "role" && it.key() != "content") message.extra[it.key()] = it.value();
    }
    out.push_back(std::move(message));
  }
  return out;
}

std::vector<ChatMessage> parse_chat_messages(const nlohmann::json& messages) {
  return parse_chat_messages(to_ordered(messages));
}

std::optional<nlohmann::ordered_json> parse_chat_tools(const nlohmann::ordered_json& record) {
  auto it = record.find("tools");
  if (it == record.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) {  // TRL json.loads a string (how datasets store varied schemas)
    nlohmann::ordered_json tools;
    try {
      tools = nlohmann::ordered_json::parse(it->get<std::string>());
    } catch (const nlohmann::json::parse_error& e) {
      throw InputError(std::string("tools: a string that is not JSON (") + e.what() + ")");
    }
    if (!tools.is_array()) {
      throw InputError("tools: expected a JSON list of tool schemas in the string, got " +
                       describe_json(to_plain(tools)));
    }
    return tools;
  }
  if (!it->is_array()) {
    throw InputError(
        "tools: expected a list of tool schemas (as apply_chat_template's tools=), got " +
        describe_json(to_plain(*it)));
  }
  return *it;
}

std::optional<nlohmann::ordered_json> parse_chat_tools(const nlohmann::json& record) {
  if (!record.is_object() || !record.contains("tools")) return std::nullopt;
  return parse_chat_tools(to_ordered(record));
}

}  // namespace align
