// `align eval`: the success rate of a model on a task set, as one flat program
// (setup -> one engine call over every item -> grade -> pass@k -> write outputs).
//
// Each item is sampled num_samples (n) times; sample s of item `id` uses seed
// named_seed(sampling.seed, id) + s, so an item's samples do not depend on the other items or on
// batching. Completion text = completion_text(tokenizer, tokens) (pts/pts_records.h), graded by the
// oracle with the item's oracle fields. Per item: c correct of n, pass@k for each k
// (eval/pass_at_k.h: the unbiased estimator); over items: the mean with an interval from the spread
// of the per-item values (the item is the unit of replication; see eval/pass_at_k.h). When
// num_samples == 1, pass@1 also gets a Wilson interval over items (each item one Bernoulli trial).
//
// Writes into output.dir (each file atomically; a rerun overwrites):
//   config.json    the resolved config
//   results.jsonl  one line per item, in data order: {"id", "n", "correct",
//                  "pass@k": {"1": p, ...}, "samples": [{"token_ids", "text", "success",
//                  "finish_reason"}]}
//   summary.json   {"items", "num_samples", "confidence", "oracle",
//                   "pass@k": {"1": {"mean", "low", "high"[, "wilson_low", "wilson_high"]}, ...},
//                   "mean_tokens", "finish_reasons": {"stop": N, "length": N}, "seconds"}
// An oracle that defines its own rates (Oracle::rates(); the safety oracle's refusal rate on
// harmful items and over-refusal on benign ones) adds to each results.jsonl line the count of the
// rates covering the item (e.g. "refusals") and to summary.json each rate that covers an item
// under its key (eval/oracle_rates.h: {"items", "samples", <count>, "mean", "low", "high"[,
// "wilson_low", "wilson_high"]}), and "oracle_rates": [{"key", "label", "higher_is_better"}] in
// the oracle's order, so tables and reports show them without knowing the oracle.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "eval/eval_config.h"
#include "eval/oracle_rates.h"
#include "eval/pass_at_k.h"
#include "eval/success_estimate.h"
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
  std::vector<EvalPassAtK> pass;  // in the config's order of k
  double mean_tokens = 0;         // generated tokens per completion
  std::map<std::string, int64_t> finish_reasons;
  double seconds = 0;  // the whole run, model loading included
  std::string oracle;
  // The oracle's own rates that cover at least one item, in the oracle's order.
  std::vector<std::pair<OracleRate, RateSummary>> rates;
};

// summary.json's object (see above).
nlohmann::json to_json(const EvalSummary& summary, const EvalConfig& config);

// `source` names the config file in messages (the oracle section's errors included).
EvalSummary run_eval(const EvalConfig& config, const std::string& source);

}  // namespace align
