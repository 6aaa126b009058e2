#include "data/token_pairs.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "common/error.h"
#include "data/dataset_records.h"
#include "data/json_fields.h"
#include "data/token_range.h"

namespace align {
namespace {

using nlohmann::json;

const json& need(const json& record, const char* key) {
  auto it = record.find(key);
  if (it == record.end()) throw InputError(std::string(key) + ": missing");
  return *it;
}

TokenId token_id(const json& value, const std::string& field, int64_t vocab) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() > std::numeric_limits<TokenId>::max()) {
    throw InputError(field + ": expected a token id, got " + describe_json(value));
  }
  const int64_t id = value.get<int64_t>();
  if (vocab > 0) check_token_id(id, vocab, field);
  return static_cast<TokenId>(id);
}

std::optional<double> probability(const json& record, const char* key) {
  auto it = record.find(key);
  if (it == record.end() || it->is_null()) return std::nullopt;
  if (!it->is_number()) throw InputError(std::string(key) + ": expected a number");
  const double p = it->get<double>();
  if (!(p >= 0 && p <= 1)) {
    throw InputError(std::string(key) + ": expected a probability in [0, 1], found " +
                     describe_json(*it));
  }
  return p;
}

}  // namespace

TokenPair token_pair_from_json(const json& record, const TokenPairOptions& opt) {
  if (!record.is_object()) throw InputError("expected a JSON object, got " + describe_json(record));
  TokenPair p;
  const json& q = need(record, "query_id");
  if (q.is_string()) {
    p.query_id = q.get<std::string>();
  } else if (q.is_number_integer()) {
    p.query_id = q.dump();
  } else {
    throw InputError("query_id: expected a string, got " + describe_json(q));
  }
  const json& ids = need(record, "prompt_token_ids");
  if (!ids.is_array() || ids.empty()) {
    throw InputError("prompt_token_ids: expected a non-empty list of token ids");
  }
  for (size_t i = 0; i < ids.size(); ++i) {
    p.prompt.push_back(
        token_id(ids[i], "prompt_token_ids[" + std::to_string(i) + "]", opt.vocab_size));
  }
  if (static_cast<int64_t>(p.prompt.size()) > opt.max_seq_len) {
    throw InputError("prompt_token_ids: " + std::to_string(p.prompt.size()) +
                     " tokens, more than max_seq_len " + std::to_string(opt.max_seq_len));
  }
  p.chosen = token_id(need(record, "chosen_token_id"), "chosen_token_id", opt.vocab_size);
  p.rejected = token_id(need(record, "rejected_token_id"), "rejected_token_id", opt.vocab_size);
  if (p.chosen == p.rejected) {
    throw InputError("rejected_token_id: equals chosen_token_id (" + std::to_string(p.chosen) +
                     ")");
  }
  p.p_chosen = probability(record, "p_chosen");
  p.p_rejected = probability(record, "p_rejected");
  read_pair_extras(record,
                   opt.weight == PairWeight::kField ? PairWeight::kField : PairWeight::kNone,
                   &p.weight, &p.ref_chosen, &p.ref_rejected);
  if (opt.weight == PairWeight::kPGap) {
    if (!p.p_chosen || !p.p_rejected) {
      throw InputError("p_chosen, p_rejected: needed by data.weight p_gap");
    }
    p.weight = std::abs(*p.p_chosen - *p.p_rejected);
    if (!(p.weight > 0)) throw InputError("p_chosen, p_rejected: equal (weight 0 under p_gap)");
  }
  return p;
}

TokenPairDataset load_token_pairs(const std::string& path, const TokenPairOptions& opt,
                                  const std::string& key) {
  TokenPairDataset out;
  for_each_record(path, key, [&](const json& record, const RecordLocation&) {
    out.pairs.push_back(token_pair_from_json(record, opt));
    out.with_reference += out.pairs.back().ref_chosen.has_value();
  });
  if (out.pairs.empty()) throw InputError(path + ": no token pairs");
  if (out.with_reference != 0 && out.with_reference != static_cast<int64_t>(out.pairs.size())) {
    throw InputError(path + ": only " + std::to_string(out.with_reference) + " of " +
                     std::to_string(out.pairs.size()) +
                     " pairs carry ref_chosen_logps/ref_rejected_logps (all or none)");
  }
  return out;
}

std::vector<PairChain> build_pair_chains(const std::vector<TokenPair>& pairs) {
  std::vector<std::string> query_order;
  std::map<std::string, std::vector<int64_t>> by_query;
  for (int64_t i = 0; i < static_cast<int64_t>(pairs.size()); ++i) {
    auto [it, fresh] = by_query.try_emplace(pairs[i].query_id);
    if (fresh) query_order.push_back(pairs[i].query_id);
    it->second.push_back(i);
  }
  std::vector<PairChain> chains;
  for (const std::string& q : query_order) {
    std::vector<int64_t>& idx = by_query[q];
    std::stable_sort(idx.begin(), idx.end(), [&](int64_t a, int64_t b) {
      return pairs[a].prompt.size() > pairs[b].prompt.size();
    });
    const size_t first = chains.size();
    for (int64_t i : idx) {
      const std::vector<TokenId>& p = pairs[i].prompt;
      size_t c = first;
      for (; c < chains.size(); ++c) {
        const std::vector<TokenId>& t = chains[c].tokens;
        if (p.size() <= t.size() && std::equal(p.begin(), p.end(), t.begin())) break;
      }
      if (c == chains.size()) chains.push_back({p, {}});
      chains[c].pairs.push_back(i);
    }
    for (size_t c = first; c < chains.size(); ++c) {
      std::reverse(chains[c].pairs.begin(), chains[c].pairs.end());  // shortest prompt first
    }
  }
  return chains;
}

}  // namespace align
