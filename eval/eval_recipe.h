// `align eval`: the success rate of a model on a task set, as one flat program
// (setup -> sample and grade every item (eval/query_eval.h) -> write outputs).
//
// Writes into output.dir (each file atomically; a rerun overwrites):
//   config.json    the resolved config
//   results.jsonl  one line per item, in data order: {"id", "n", "correct",
//                  "pass@k": {"1": p, ...}, "samples": [{"token_ids", "text", "success",
//                  "finish_reason"}]}
//   summary.json   {"items", "num_samples", "confidence", "oracle",
//                   "pass@k": {"1": {"mean", "low", "high"[, "wilson_low", "wilson_high"]}, ...},
//                   "mean_tokens", "finish_reasons": {"stop": N, "length": N},
//                   "clipped_ratio" (the "length" share: TRL's completions/clipped_ratio),
//                   "seconds"}
// An oracle that defines its own rates (Oracle::rates(); the safety oracle's refusal rate on
// harmful items and over-refusal on benign ones) adds to each results.jsonl line the count of the
// rates covering the item (e.g. "refusals") and to summary.json each rate that covers an item
// under its key (eval/oracle_rates.h: {"items", "samples", <count>, "mean", "low", "high"[,
// "wilson_low", "wilson_high"]}), and "oracle_rates": [{"key", "label", "higher_is_better"}] in
// the oracle's order, so tables and reports show them without knowing the oracle.
#pragma once

#include <string>

#include "eval/eval_config.h"
#include "eval/query_eval.h"

namespace align {

// `source` names the config file in messages (the oracle section's errors included).
EvalSummary run_eval(const EvalConfig& config, const std::string& source);

}  // namespace align
