#include "data/preference_dataset.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "data/chat_template.h"
#include "data/dataset_records.h"
#include "data/json_fields.h"
#include "data/token_range.h"

namespace align {
namespace {

using nlohmann::json;

std::vector<TokenId> read_ids(const json& value, const std::string& field) {
  if (!value.is_array()) throw InputError(field + ": expected a list of token ids");
  std::vector<TokenId> ids;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_number_integer() || value[i].get<int64_t>() < 0 ||
        value[i].get<int64_t>() > std::numeric_limits<TokenId>::max()) {
      throw InputError(field + "[" + std::to_string(i) + "]: expected a token id, got " +
                       describe_json(value[i]));
    }
    ids.push_back(value[i].get<TokenId>());
  }
  return ids;
}

const json& need(const json& record, const char* key) {
  auto it = record.find(key);
  if (it == record.end()) throw InputError(std::string(key) + ": missing");
  return *it;
}

std::vector<TokenId> text_completion(const Tokenizer& tok, const std::string& text) {
  const std::optional<TokenId> eos = tok.eos_id();
  if (!eos) throw InputError(tok.source() + ": the tokenizer has no eos token");
  std::vector<TokenId> ids = tok.encode(text);
  if (ids.empty() || ids.back() != *eos) ids.push_back(*eos);
  return ids;
}

std::vector<ChatMessage> messages_of(const json& value, const std::string& field) {
  try {
    std::vector<ChatMessage> m = parse_chat_messages(value);
    if (m.empty()) throw InputError("messages: is empty");
    return m;
  } catch (const InputError& e) {
    std::string what = e.what();
    if (what.rfind("messages", 0) == 0) what = field + what.substr(8);
    throw InputError(what);
  }
}

// Where TRL's extract_prompt splits chosen and rejected strings: at the first character where they
// differ (a whole UTF-8 character: Python compares code points), one earlier when the character
// before is a space (the space goes with the completions); when neither differs within the
// shorter, before its last character (TRL's loop ends there).
size_t implicit_prompt_length(const std::string& a, const std::string& b) {
  const size_t n = std::min(a.size(), b.size());
  auto continuation = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; };
  size_t i = 0;
  while (i < n && a[i] == b[i])
    ++i;
  if (i == n) {  // no difference: back to the start of the shorter's last character
    if (i > 0) --i;
    while (i > 0 && continuation(a[i]))
      --i;
    return i;
  }
  while (i > 0 && continuation(a[i]))  // the differing character starts earlier
    --i;
  if (i > 0 && a[i - 1] == ' ') --i;
  return i;
}

// TRL's extract_prompt for message lists: the messages both share before the first that differs
// (when none does within the shorter list, all but its last).
size_t implicit_prompt_messages(const json& a, const json& b) {
  const size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return i;
  return n > 0 ? n - 1 : 0;
}

bool is_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// prompt + completion messages -> (prompt ids, completion ids), split at the message boundary.
void chat_pair(const LazyChatFormat& chat, const json& prompt, const json& chosen,
               const json& rejected, const nlohmann::ordered_json* tools, PreferencePair& pair) {
  const std::vector<ChatMessage> p = messages_of(prompt, "prompt");
  const std::vector<TokenId> with_gen = chat.get().render(p, true, tools).ids;
  std::vector<TokenId> without = chat.get().render(p, false, tools).ids;
  std::vector<TokenId> full[2];
  const json* completions[2] = {&chosen, &rejected};
  const char* names[2] = {"chosen", "rejected"};
  for (int i = 0; i < 2; ++i) {
    std::vector<ChatMessage> m = p;
    const std::vector<ChatMessage> tail = messages_of(*completions[i], names[i]);
    m.insert(m.end(), tail.begin(), tail.end());
    full[i] = chat.get().render(m, false, tools).ids;
  }
  // Without a generation prompt, the prompt's part of both (phi3 ends a conversation with eos).
  for (const std::vector<TokenId>& f : full) {
    without.resize(static_cast<size_t>(
        std::mismatch(without.begin(), without.end(), f.begin(), f.end()).first - without.begin()));
  }
  pair.prompt = is_prefix(with_gen, full[0]) && is_prefix(with_gen, full[1]) ? with_gen : without;
  pair.chosen.assign(full[0].begin() + static_cast<int64_t>(pair.prompt.size()), full[0].end());
  pair.rejected.assign(full[1].begin() + static_cast<int64_t>(pair.prompt.size()), full[1].end());
}

}  // namespace

void read_pair_extras(const json& record, PairWeight weight_source, double* weight,
                      std::optional<double>* ref_chosen, std::optional<double>* ref_rejected) {
  *weight = 1.0;
  if (weight_source == PairWeight::kField) {
    const json& w = need(record, "weight");
    if (!w.is_number() || !(w.get<double>() > 0)) {
      throw InputError("weight: expected a number > 0, got " + describe_json(w));
    }
    *weight = w.get<double>();
  }
  const bool has_c = record.contains("ref_chosen_logps");
  const bool has_r = record.contains("ref_rejected_logps");
  if (has_c != has_r) {
    throw InputError(std::string(has_c ? "ref_rejected_logps" : "ref_chosen_logps") +
                     ": missing (reference log-probs come in pairs)");
  }
  if (!has_c) return;
  for (const char* key : {"ref_chosen_logps", "ref_rejected_logps"}) {
    if (!record.at(key).is_number()) {
      throw InputError(std::string(key) + ": expected a number, got " +
                       describe_json(record.at(key)));
    }
  }
  *ref_chosen = record.at("ref_chosen_logps").get<double>();
  *ref_rejected = record.at("ref_rejected_logps").get<double>();
}

PreferencePair preference_pair_from_json(const json& record, const LazyChatFormat& chat,
                                         const PreferenceDataOptions& opt, bool* truncated) {
  if (!record.is_object()) throw InputError("expected a JSON object, got " + describe_json(record));
  PreferencePair pair;
  const Tokenizer& tok = chat.tokenizer();
  if (record.contains("prompt_input_ids")) {
    pair.prompt = read_ids(need(record, "prompt_input_ids"), "prompt_input_ids");
    pair.chosen = read_ids(need(record, "chosen_input_ids"), "chosen_input_ids");
    pair.rejected = read_ids(need(record, "rejected_input_ids"), "rejected_input_ids");
  } else {
    const json& chosen = need(record, "chosen");
    const json& rejected = need(record, "rejected");
    // TRL's implicit prompt: no "prompt", or one of the other kind than the completions (which
    // TRL ignores), means the prompt is the common start of chosen and rejected.
    const bool implicit =
        !record.contains("prompt") || record.at("prompt").is_array() != chosen.is_array();
    json extracted;  // {"prompt", "chosen", "rejected"} when implicit
    if (implicit) {
      if (chosen.is_string() && rejected.is_string()) {
        const std::string c = chosen, r = rejected;
        const size_t at = implicit_prompt_length(c, r);
        extracted = {
            {"prompt", c.substr(0, at)}, {"chosen", c.substr(at)}, {"rejected", r.substr(at)}};
      } else if (chosen.is_array() && rejected.is_array()) {
        const size_t at = implicit_prompt_messages(chosen, rejected);
        extracted = {
            {"prompt", json(chosen.begin(), chosen.begin() + static_cast<int64_t>(at))},
            {"chosen", json(chosen.begin() + static_cast<int64_t>(at), chosen.end())},
            {"rejected", json(rejected.begin() + static_cast<int64_t>(at), rejected.end())}};
      } else {
        throw InputError("chosen, rejected: expected two strings or two message lists, got " +
                         describe_json(chosen) + ", " + describe_json(rejected));
      }
      const json& p = extracted["prompt"];
      if (p.is_string() ? p.get<std::string>().empty() : p.empty()) {
        throw InputError(
            "prompt: missing, and chosen and rejected share no beginning to take it from "
            "(TRL's implicit prompt)");
      }
    }
    const json& prompt = implicit ? extracted["prompt"] : need(record, "prompt");
    const json& chosen_part = implicit ? extracted["chosen"] : chosen;
    const json& rejected_part = implicit ? extracted["rejected"] : rejected;
    if (prompt.is_string() && chosen_part.is_string() && rejected_part.is_string()) {
      pair.prompt = tok.encode(prompt.get<std::string>());
      pair.chosen = text_completion(tok, chosen_part.get<std::string>());
      pair.rejected = text_completion(tok, rejected_part.get<std::string>());
    } else if (prompt.is_array() && chosen_part.is_array() && rejected_part.is_array()) {
      const std::optional<nlohmann::ordered_json> tools = parse_chat_tools(record);
      chat_pair(chat, prompt, chosen_part, rejected_part, tools ? &*tools : nullptr, pair);
    } else {
      throw InputError(
          "prompt, chosen, rejected: expected three strings or three message lists, got " +
          describe_json(prompt) + ", " + describe_json(chosen_part) + ", " +
          describe_json(rejected_part));
    }
  }
  if (opt.vocab_size > 0) {
    const char* suffix = record.contains("prompt_input_ids") ? "_input_ids" : "";
    check_token_ids(pair.prompt, opt.vocab_size, std::string("prompt") + suffix);
    check_token_ids(pair.chosen, opt.vocab_size, std::string("chosen") + suffix);
    check_token_ids(pair.rejected, opt.vocab_size, std::string("rejected") + suffix);
  }
  if (pair.prompt.empty()) throw InputError("prompt: no tokens (nothing predicts the completion)");
  if (pair.chosen.empty()) throw InputError("chosen: no completion tokens");
  if (pair.rejected.empty()) throw InputError("rejected: no completion tokens");
  const int64_t room = opt.max_seq_len - static_cast<int64_t>(pair.prompt.size());
  if (room < 1) {
    throw InputError("prompt: " + std::to_string(pair.prompt.size()) +
                     " tokens leave no room for a completion within max_seq_len " +
                     std::to_string(opt.max_seq_len));
  }
  bool cut = false;
  for (auto* ids : {&pair.chosen, &pair.rejected}) {
    if (static_cast<int64_t>(ids->size()) > room) {
      ids->resize(static_cast<size_t>(room));
      cut = true;
    }
  }
  if (truncated) *truncated = cut;
  read_pair_extras(record, opt.weight, &pair.weight, &pair.ref_chosen, &pair.ref_rejected);
  return pair;
}

PreferenceDataset load_preference_dataset(const std::string& path, const LazyChatFormat& chat,
                                          const PreferenceDataOptions& opt,
                                          const std::string& key) {
  if (opt.weight == PairWeight::kPGap) {
    throw InputError("data.weight: p_gap needs token pairs (data.format token)");
  }
  PreferenceDataset out;
  for_each_record(path, key, [&](const json& record, const RecordLocation&) {
    bool cut = false;
    out.pairs.push_back(preference_pair_from_json(record, chat, opt, &cut));
    out.truncated += cut;
    out.with_reference += out.pairs.back().ref_chosen.has_value();
  });
  if (out.pairs.empty()) throw InputError(path + ": no preference pairs");
  if (out.with_reference != 0 && out.with_reference != static_cast<int64_t>(out.pairs.size())) {
    throw InputError(path + ": only " + std::to_string(out.with_reference) + " of " +
                     std::to_string(out.pairs.size()) +
                     " pairs carry ref_chosen_logps/ref_rejected_logps (all or none)");
  }
  return out;
}

}  // namespace align
