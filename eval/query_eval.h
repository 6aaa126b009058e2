// A model sampled on a query set and graded by an oracle: the part of `align eval` that align dpo's
// held-out eval (dpo.eval) runs on its policy in memory as well, so both score alike.
//
// Each item is sampled sampling.num_samples (n) times; sample s of item `id` uses seed
// named_seed(sampling.seed, id) + s, so an item's samples do not depend on the other items or on
// batching. Completion text = completion_text(tokenizer, tokens) (eval/query_set.h), graded by the
// oracle with the item's fields. Per item: c correct of n, pass@k for each k (eval/pass_at_k.h:
// the unbiased estimator); over items: the mean with an interval from the spread of the per-item
// values (the item is the unit of replication). When n == 1, pass@1 also gets a Wilson interval
// over items (each item one Bernoulli trial). An oracle with its own rates (Oracle::rates()) adds
// them (eval/oracle_rates.h).
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "eval/eval_config.h"
#include "eval/oracle_rates.h"
#include "eval/pass_at_k.h"
#include "eval/query_set.h"
#include "eval/success_estimate.h"
#include "model/phi3_model.h"
#include "oracles/oracle.h"

namespace align {

struct EvalPassAtK {
  int64_t k = 1;
  MeanInterval value;       // mean over items with its interval
  bool has_wilson = false;  // k == 1 and num_samples == 1
  Interval wilson;          // then: Wilson interval of (items correct) / items
};

struct EvalSummary {
  int64_t items = 0;
  int64_t num_samples = 0;
  double confidence = 0.95;
  std::vector<EvalPassAtK> pass;  // in the config's order of k
  double mean_tokens = 0;         // generated tokens per completion (TRL's completions/mean_length)
  std::map<std::string, int64_t> finish_reasons;
  double clipped_ratio = 0;  // clipped_ratio(finish_reasons)
  double seconds = 0;        // the whole run (align eval: model loading included)
  std::string oracle;
  // The oracle's own rates that cover at least one item, in the oracle's order.
  std::vector<std::pair<OracleRate, RateSummary>> rates;
};

// TRL's completions/clipped_ratio: the fraction of completions that did not end with a stop token,
// i.e. hit max_new_tokens (finish_reason "length"); 0 when there are none. A model that lost its
// end-of-turn shows here while its rewards may still look fine (docs/dpo.md).
double clipped_ratio(const std::map<std::string, int64_t>& finish_reasons);

// summary.json's object: {"items", "num_samples", "confidence", "oracle",
// "pass@k": {"1": {"mean", "low", "high"[, "wilson_low", "wilson_high"]}, ...}, "mean_tokens",
// "finish_reasons", "clipped_ratio", "seconds"}, each rate under its key and "oracle_rates" listing
// them.
nlohmann::json to_json(const EvalSummary& summary);

struct QueryEval {
  EvalSummary summary;
  // results.jsonl's lines, in query order: {"id", "n", "correct", "pass@k": {"1": p, ...},
  // "samples": [{"token_ids", "text", "success", "finish_reason"}]} (+ each rate's count).
  std::vector<nlohmann::json> results;
};

struct QueryEvalOptions {
  EvalSamplingSection sampling;
  EngineOptions rollout;
  EvalSection eval;
  std::string progress_label = "eval tokens";  // the progress line's label
  bool show_progress = true;                   // false on ranks other than the first
};

// Samples every query (one engine call), grades and scores them. `stop_token_ids` end a sample.
QueryEval evaluate_queries(const Phi3Model& model, const Tokenizer& tokenizer, const Oracle& oracle,
                           const std::vector<Query>& queries,
                           const std::vector<TokenId>& stop_token_ids,
                           const QueryEvalOptions& options);

// Writes `dir`/results.jsonl and `dir`/summary.json (each atomically).
void write_query_eval(const std::string& dir, const QueryEval& eval);

}  // namespace align
