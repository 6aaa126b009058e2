#include "pts/pts_records.h"

namespace align {
namespace {

// One token's text for people reading the outputs; an id beyond the tokenizer reads "<id N>".
std::string token_text(const Tokenizer& tokenizer, TokenId id) {
  if (id < 0 || id >= tokenizer.vocab_size()) return "<id " + std::to_string(id) + ">";
  return tokenizer.decode({id});
}

std::vector<TokenId> concat(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  std::vector<TokenId> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

}  // namespace

std::vector<nlohmann::json> pivot_records(const Query& query, const QueryResult& result,
                                          const Tokenizer& tokenizer) {
  std::vector<nlohmann::json> out;
  for (const PtsPivot& p : result.pivots) {
    out.push_back({{"query_id", result.id},
                   {"completion_index", p.completion_index},
                   {"position", p.prefix.size()},
                   {"prompt_token_ids", query.prompt},
                   {"prefix_token_ids", p.prefix},
                   {"pivot_token_id", p.token},
                   {"pivot_text", token_text(tokenizer, p.token)},
                   {"direction", p.p_after > p.p_before ? "raises" : "lowers"},
                   {"p_before", p.p_before},
                   {"p_after", p.p_after},
                   {"n_before", p.n_before},
                   {"n_after", p.n_after}});
  }
  return out;
}

std::vector<nlohmann::json> pair_records(const Query& query, const QueryResult& result,
                                         const Tokenizer& tokenizer) {
  std::vector<nlohmann::json> out;
  for (const PtsPair& p : result.pairs) {
    out.push_back({{"query_id", result.id},
                   {"prompt_token_ids", concat(query.prompt, p.prefix)},
                   {"chosen_token_id", p.chosen},
                   {"rejected_token_id", p.rejected},
                   {"chosen_text", token_text(tokenizer, p.chosen)},
                   {"rejected_text", token_text(tokenizer, p.rejected)},
                   {"p_chosen", p.p_chosen},
                   {"p_rejected", p.p_rejected},
                   {"n_chosen", p.n_chosen},
                   {"n_rejected", p.n_rejected},
                   {"position", p.prefix.size()},
                   {"completion_index", result.pivots[p.pivot_index].completion_index}});
  }
  return out;
}

nlohmann::json query_record(const QueryResult& r) {
  return {{"query_id", r.id},
          {"p_initial", r.p_initial},
          {"n_initial", r.n_initial},
          {"kept", r.kept},
          {"completions_analysed", r.analysed.size()},
          {"pivots", r.pivots.size()},
          {"pairs", r.pairs.size()},
          {"pivots_dropped", r.pivots_dropped},
          {"rollouts", r.rollouts},
          {"tokens_generated", r.tokens_generated},
          {"seconds", r.seconds}};
}

std::vector<nlohmann::json> completion_records(const QueryResult& result,
                                               const Tokenizer& tokenizer) {
  std::vector<nlohmann::json> out;
  for (const AnalysedCompletion& a : result.analysed) {
    nlohmann::json texts = nlohmann::json::array();
    for (TokenId t : a.tokens)
      texts.push_back(token_text(tokenizer, t));
    nlohmann::json estimates = nlohmann::json::array();
    for (const auto& e : a.estimates)
      estimates.push_back({{"prefix_length", e.prefix_length}, {"p", e.p}, {"n", e.n}});
    out.push_back({{"query_id", result.id},
                   {"completion_index", a.completion_index},
                   {"token_ids", a.tokens},
                   {"token_texts", texts},
                   {"success", a.success},
                   {"estimates", estimates},
                   {"pivot_positions", a.pivot_positions}});
  }
  return out;
}

}  // namespace align
