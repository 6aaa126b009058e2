#include "data/sft_dataset.h"

#include <algorithm>

#include "common/error.h"
#include "data/chat_template.h"
#include "data/dataset_records.h"
#include "data/json_fields.h"
#include "data/token_range.h"

namespace align {

namespace {

using nlohmann::json;

// The tokenizer cannot render a shape at all (no eos): the same for every
// line, so it is never skipped as a bad line.
class TokenizerProblem : public InputError {
 public:
  using InputError::InputError;
};

// An example before the loss options and truncation are applied, with what to say when it ends up
// with no target.
struct Draft {
  SftExample example;
  std::string field;  // the field whose tokens are the targets
  std::string why;    // why there may be none
};

void check_options(const SftDataOptions& opt) {
  if (opt.max_seq_len < 2) {
    throw InputError("max_seq_len: expected at least 2, got " + std::to_string(opt.max_seq_len));
  }
}

const json& member(const json& record, const char* key) {
  return *record.find(key);
}

// parse_chat_messages with errors naming `field` rather than "messages"; empty lists rejected.
std::vector<ChatMessage> read_messages(const json& value, const std::string& field) {
  std::vector<ChatMessage> messages;
  try {
    messages = parse_chat_messages(value);
  } catch (const InputError& e) {
    std::string what = e.what();
    const std::string named = "messages";
    if (what.compare(0, named.size(), named) == 0) what = field + what.substr(named.size());
    throw InputError(what);
  }
  if (messages.empty()) throw InputError(field + ": is empty (expected at least one message)");
  return messages;
}

Draft from_messages(const json& record, const LazyChatFormat& format) {
  const std::optional<nlohmann::ordered_json> tools = parse_chat_tools(record);
  ChatTokens chat = format.get().render(read_messages(member(record, "messages"), "messages"),
                                        false, tools ? &*tools : nullptr);
  return {{std::move(chat.ids), std::move(chat.assistant_mask)},
          "messages",
          "no assistant turn after the first token"};
}

// The tokenizer's eos, which text examples end with.
TokenId require_eos(const Tokenizer& tok, const char* shape) {
  const std::optional<TokenId> eos = tok.eos_id();
  if (!eos) {
    throw TokenizerProblem(tok.source() +
                           ": the tokenizer has no eos token (\"eos_token\" in "
                           "tokenizer_config.json), which " +
                           shape + " examples end with");
  }
  return *eos;
}

// TRL "language modeling": encode(text) + [eos]; every token after the first is a target.
Draft from_lm_text(const std::string& text, const Tokenizer& tok) {
  const TokenId eos = require_eos(tok, "text");
  SftExample ex;
  ex.ids = tok.encode(text);
  if (ex.ids.empty() || ex.ids.back() != eos) ex.ids.push_back(eos);
  ex.loss_mask.assign(ex.ids.size(), 1);
  return {std::move(ex), "text", "every token is a target"};
}

// TRL "standard": encode(prompt) + encode(completion) + [eos]; targets the completion and eos.
Draft from_text(const std::string& prompt, const std::string& completion, const Tokenizer& tok) {
  const TokenId eos = require_eos(tok, "prompt/completion text");
  SftExample ex;
  ex.ids = tok.encode(prompt);
  ex.loss_mask.assign(ex.ids.size(), 0);
  std::vector<TokenId> tail = tok.encode(completion);
  if (tail.empty() || tail.back() != eos) tail.push_back(eos);
  ex.ids.insert(ex.ids.end(), tail.begin(), tail.end());
  ex.loss_mask.insert(ex.loss_mask.end(), tail.size(), 1);
  return {std::move(ex), "completion", "the completion and eos are the only targets"};
}

// TRL "conversational": chat format of prompt + completion; targets the completion's assistant
// turns.
Draft from_conversation(const json& record, const LazyChatFormat& format) {
  const json& prompt = member(record, "prompt");
  const json& completion = member(record, "completion");
  const std::optional<nlohmann::ordered_json> tools = parse_chat_tools(record);
  std::vector<ChatMessage> messages = read_messages(prompt, "prompt");
  const std::vector<ChatMessage> tail = read_messages(completion, "completion");
  const std::vector<TokenId> alone =
      format.get().render(messages, false, tools ? &*tools : nullptr).ids;
  messages.insert(messages.end(), tail.begin(), tail.end());
  ChatTokens chat = format.get().render(messages, false, tools ? &*tools : nullptr);
  // The prompt's part: where the two renderings part (phi3 ends a conversation with eos, so the
  // prompt alone is not a prefix of the whole).
  const size_t prompt_len = static_cast<size_t>(
      std::mismatch(alone.begin(), alone.end(), chat.ids.begin(), chat.ids.end()).first -
      alone.begin());
  std::fill(chat.assistant_mask.begin(), chat.assistant_mask.begin() + prompt_len, 0);
  return {{std::move(chat.ids), std::move(chat.assistant_mask)},
          "completion",
          "no assistant turn in the completion"};
}

Draft draft_from_json(const json& record, const LazyChatFormat& chat) {
  const Tokenizer& tok = chat.tokenizer();
  if (!record.is_object()) {
    throw InputError("expected a JSON object, got " + describe_json(record));
  }
  const bool has_messages = record.contains("messages");
  const bool has_prompt = record.contains("prompt");
  const bool has_completion = record.contains("completion");
  const bool has_text = record.contains("text");
  if (static_cast<int>(has_messages) + static_cast<int>(has_prompt || has_completion) +
          static_cast<int>(has_text) >
      1) {
    throw InputError(
        "expected one of \"messages\", \"prompt\" + \"completion\" or \"text\", got several "
        "shapes");
  }
  if (has_messages) return from_messages(record, chat);
  if (has_text) {
    const json& text = member(record, "text");
    if (!text.is_string()) {
      throw InputError("text: expected a string, got " + describe_json(text));
    }
    return from_lm_text(text.get<std::string>(), tok);
  }
  if (!has_prompt && !has_completion) {
    std::string keys;
    for (const auto& item : record.items())
      keys += (keys.empty() ? "" : ", ") + item.key();
    throw InputError(
        "expected \"messages\", \"prompt\" + \"completion\" or \"text\", got none (keys: " +
        (keys.empty() ? std::string("none") : keys) + ")");
  }
  if (!has_prompt) throw InputError("prompt: missing (a \"completion\" needs a \"prompt\")");
  if (!has_completion)
    throw InputError("completion: missing (a \"prompt\" needs a \"completion\")");
  const json& prompt = member(record, "prompt");
  const json& completion = member(record, "completion");
  if (prompt.is_string() && completion.is_string()) {
    return from_text(prompt.get<std::string>(), completion.get<std::string>(), tok);
  }
  if (prompt.is_array() && completion.is_array()) return from_conversation(record, chat);
  for (const auto* field : {"prompt", "completion"}) {
    const json& value = member(record, field);
    if (!value.is_string() && !value.is_array()) {
      throw InputError(std::string(field) + ": expected a string or a list of messages, got " +
                       describe_json(value));
    }
  }
  throw InputError("prompt, completion: expected both strings or both message lists, got " +
                   describe_json(prompt) + " and " + describe_json(completion));
}

}  // namespace

SftExample sft_example_from_json(const json& record, const LazyChatFormat& chat,
                                 const SftDataOptions& opt, bool* truncated) {
  check_options(opt);
  Draft draft = draft_from_json(record, chat);
  SftExample& ex = draft.example;
  if (opt.vocab_size > 0) {
    check_token_ids(ex.ids, opt.vocab_size,
                    record.contains("messages") ? "messages"
                    : record.contains("text")   ? "text"
                                                : "prompt + completion");
  }
  if (!opt.assistant_only_loss) {
    std::fill(ex.loss_mask.begin(), ex.loss_mask.end(), 1);
    draft.why = "a single token, nothing to predict it from";
  }
  const bool cut = static_cast<int64_t>(ex.ids.size()) > opt.max_seq_len;
  if (cut) {
    ex.ids.resize(opt.max_seq_len);
    ex.loss_mask.resize(opt.max_seq_len);
  }
  if (truncated) *truncated = cut;
  if (!ex.loss_mask.empty()) ex.loss_mask[0] = 0;
  if (std::find(ex.loss_mask.begin(), ex.loss_mask.end(), 1) == ex.loss_mask.end()) {
    if (cut) {
      throw InputError(draft.field + ": no target token within the first " +
                       std::to_string(opt.max_seq_len) +
                       " tokens (max_seq_len); raise max_seq_len or shorten the prompt");
    }
    throw InputError(draft.field + ": no target token (" + draft.why + ")");
  }
  return std::move(draft.example);
}

SftDataset load_sft_dataset(const std::string& source, const LazyChatFormat& chat,
                            const SftDataOptions& opt, const std::string& key) {
  check_options(opt);
  SftDataset out;
  auto skip = [&](const std::string& message) {
    ++out.skipped;
    if (out.skip_messages.size() < kMaxSkipMessages) out.skip_messages.push_back(message);
  };
  RecordReadOptions read;
  if (opt.skip_bad_lines) read.on_bad_line = skip;
  for_each_record(
      source, key,
      [&](const json& record, const RecordLocation& at) {
        bool truncated = false;
        SftExample ex;
        try {
          ex = sft_example_from_json(record, chat, opt, &truncated);
        } catch (const TokenizerProblem&) {
          throw;                         // the same for every record: never skipped
        } catch (const InputError& e) {  // for_each_record adds the place when it throws
          if (!opt.skip_bad_lines) throw;
          skip(at.error(e.what()));
          return;
        } catch (const json::exception& e) {
          if (!opt.skip_bad_lines) throw;
          skip(at.error(e.what()));
          return;
        }
        out.truncated += truncated ? 1 : 0;
        out.target_tokens += std::count(ex.loss_mask.begin(), ex.loss_mask.end(), 1);
        out.examples.push_back(std::move(ex));
      },
      read);
  if (out.examples.empty()) {
    std::string message = source + ": no usable examples";
    if (out.skipped > 0) {
      message += " (" + std::to_string(out.skipped) +
                 " malformed records skipped; the first: " + out.skip_messages.front() + ")";
    }
    throw InputError(message);
  }
  return out;
}

}  // namespace align
