// Token-level preference pairs from Pivotal Token Search (pts/ writes them; docs/pts.md)
// and their grouping into prefix chains, so that every pair of one completion is scored in ONE
// forward pass. One JSON object per record of a JSONL file, Parquet or a hub dataset id
// (data/dataset_records.h; unknown keys are ignored):
//
//   {"query_id": "q7", "prompt_token_ids": [...], "chosen_token_id": 17, "rejected_token_id": 42,
//    "p_chosen": 0.8, "p_rejected": 0.3, ...,
//    optional "weight", "ref_chosen_logps", "ref_rejected_logps"}
//
// prompt_token_ids is the query rendered with the chat template plus the completion prefix before
// the pivot; the completion is exactly one token and nothing (no EOS, no end-of-turn) follows it.
//
// Chains: within a query_id, pairs are taken longest prompt first and each joins the first chain
// whose tokens its prompt is a prefix of (or starts a new chain). A chain's forward over its
// tokens [T] gives, at position i, the next-token distribution after tokens[0..i]: the pair whose
// prompt has length i + 1 reads log p(chosen) and log p(rejected) there.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "data/preference_dataset.h"
#include "data/token_id.h"

namespace align {

struct TokenPair {
  std::string query_id;
  std::vector<TokenId> prompt;  // [Tp] >= 1 token
  TokenId chosen = 0, rejected = 0;
  std::optional<double> p_chosen, p_rejected;  // measured success probabilities, when given
  double weight = 1.0;
  std::optional<double> ref_chosen, ref_rejected;  // precomputed reference log-probs
};

struct TokenPairOptions {
  int64_t max_seq_len = 2048;  // longest prompt allowed
  int64_t vocab_size = 0;      // the model's: ids must be below it (check_token_id); 0: unchecked
  PairWeight weight = PairWeight::kNone;
};

struct TokenPairDataset {
  std::vector<TokenPair> pairs;  // in file order
  int64_t with_reference = 0;
};

// Throws IoError / InputError "file:line: field: ..." (missing or mistyped field, id outside the
// vocabulary, chosen == rejected, prompt longer than max_seq_len, p_gap weighting without
// p_chosen/p_rejected or with a zero gap, reference log-probs on only some lines, empty file).
// `key` names `source` in errors.
TokenPairDataset load_token_pairs(const std::string& source, const TokenPairOptions& opt,
                                  const std::string& key = "data");
TokenPair token_pair_from_json(const nlohmann::json& record, const TokenPairOptions& opt);

struct PairChain {
  std::vector<TokenId> tokens;  // [T] the longest prompt of the chain
  std::vector<int64_t> pairs;   // indices into the pair list, ordered by prompt length
};

// Chains in order of each query's first appearance, then by decreasing length. Every pair is in
// exactly one chain.
std::vector<PairChain> build_pair_chains(const std::vector<TokenPair>& pairs);

}  // namespace align
