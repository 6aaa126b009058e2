#include "data/preference_dataset.h"

#include <algorithm>

#include "common/error.h"
#include "common/jsonl.h"
#include "data/chat_format.h"
#include "data/json_fields.h"

namespace align {
namespace {

using nlohmann::json;

std::vector<TokenId> read_ids(const json& value, const std::string& field) {
  if (!value.is_array()) throw InputError(field + ": expected a list of token ids");
  std::vector<TokenId> ids;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_number_integer() || value[i].get<int64_t>() < 0) {
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

bool is_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  return a.size() <= b.size() && std::equal(a.begin(), a.end(), b.begin());
}

// prompt + completion messages -> (prompt ids, completion ids), split at the message boundary.
void chat_pair(const Tokenizer& tok, const json& prompt, const json& chosen, const json& rejected,
               PreferencePair& pair) {
  const std::vector<ChatMessage> p = messages_of(prompt, "prompt");
  const std::vector<TokenId> with_gen = apply_chat_format(tok, p, true).ids;
  const std::vector<TokenId> without = apply_chat_format(tok, p, false).ids;
  std::vector<TokenId> full[2];
  const json* completions[2] = {&chosen, &rejected};
  const char* names[2] = {"chosen", "rejected"};
  for (int i = 0; i < 2; ++i) {
    std::vector<ChatMessage> m = p;
    const std::vector<ChatMessage> tail = messages_of(*completions[i], names[i]);
    m.insert(m.end(), tail.begin(), tail.end());
    full[i] = apply_chat_format(tok, m, false).ids;
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

PreferencePair preference_pair_from_json(const json& record, const Tokenizer& tok,
                                         const PreferenceDataOptions& opt, bool* truncated) {
  if (!record.is_object()) throw InputError("expected a JSON object, got " + describe_json(record));
  PreferencePair pair;
  if (record.contains("prompt_input_ids")) {
    pair.prompt = read_ids(need(record, "prompt_input_ids"), "prompt_input_ids");
    pair.chosen = read_ids(need(record, "chosen_input_ids"), "chosen_input_ids");
    pair.rejected = read_ids(need(record, "rejected_input_ids"), "rejected_input_ids");
    for (const auto* ids : {&pair.prompt, &pair.chosen, &pair.rejected}) {
      for (TokenId id : *ids) {
        if (id >= tok.vocab_size()) {
          throw InputError("token id " + std::to_string(id) + " is outside the vocabulary (" +
                           std::to_string(tok.vocab_size()) + ")");
        }
      }
    }
  } else {
    const json& prompt = need(record, "prompt");
    const json& chosen = need(record, "chosen");
    const json& rejected = need(record, "rejected");
    if (prompt.is_string() && chosen.is_string() && rejected.is_string()) {
      pair.prompt = tok.encode(prompt.get<std::string>());
      pair.chosen = text_completion(tok, chosen.get<std::string>());
      pair.rejected = text_completion(tok, rejected.get<std::string>());
    } else if (prompt.is_array() && chosen.is_array() && rejected.is_array()) {
      chat_pair(tok, prompt, chosen, rejected, pair);
    } else {
      throw InputError(
          "prompt, chosen, rejected: expected three strings or three message lists, got " +
          describe_json(prompt) + ", " + describe_json(chosen) + ", " + describe_json(rejected));
    }
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

PreferenceDataset load_preference_dataset(const std::string& path, const Tokenizer& tok,
                                          const PreferenceDataOptions& opt) {
  if (opt.weight == PairWeight::kPGap) {
    throw InputError("data.weight: p_gap needs token pairs (data.format token)");
  }
  PreferenceDataset out;
  for_each_jsonl(path, [&](const json& record, const JsonlLocation&) {
    bool cut = false;
    out.pairs.push_back(preference_pair_from_json(record, tok, opt, &cut));
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
