// The JSON lines `align pts` writes (one function per file; fields documented in docs/pts.md).
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "data/tokenizer.h"
#include "pts/pivotal_search.h"

namespace align {

// pivots.jsonl: query_id, completion_index, position, prompt_token_ids (the query),
// prefix_token_ids (completion tokens before the pivot), pivot_token_id, pivot_text, direction
// ("raises" or "lowers"), p_before, p_after, n_before, n_after (0 = exact, a graded completion).
std::vector<nlohmann::json> pivot_records(const Query& query, const QueryResult& result,
                                          const Tokenizer& tokenizer);

// pairs.jsonl: query_id, prompt_token_ids (query + prefix: the DPO prompt), chosen_token_id,
// rejected_token_id, chosen_text, rejected_text, p_chosen, p_rejected, n_chosen, n_rejected,
// position, completion_index.
std::vector<nlohmann::json> pair_records(const Query& query, const QueryResult& result,
                                         const Tokenizer& tokenizer);

// queries.jsonl: one line per query: query_id, p_initial, n_initial, kept, completions_analysed,
// pivots, pairs, pivots_dropped, rollouts, tokens_generated, seconds.
nlohmann::json query_record(const QueryResult& result);

// completions.jsonl: query_id, completion_index, token_ids, token_texts, success, estimates
// ([{prefix_length, p, n}]), pivot_positions: what reports colour token by token.
std::vector<nlohmann::json> completion_records(const QueryResult& result,
                                               const Tokenizer& tokenizer);

}  // namespace align
