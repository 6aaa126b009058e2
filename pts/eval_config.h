// The `align eval` run config: plain structs, one per JSON section, read strictly (unknown keys are
// errors naming their path) and written back resolved into the output folder.
//
//   {"model":    {"path", "dtype", "device"},
//    "data":     {"path", "system_prompt", "limit"}           (pts/pts_dataset.h: the query format)
//    "oracle":   {"type", ...}                                (pts/oracle.h)
//    "sampling": {"temperature", "top_p", "top_k", "min_p", "max_new_tokens", "num_samples",
//                 "seed"},
//    "rollout":  {"page_size", "kv_budget_tokens", "max_batch", "prefill_chunk"},
//    "eval":     {"k": [1, ...], "confidence"},
//    "output":   {"dir"}}
// Defaults: num_samples 1, max_new_tokens 512, temperature 1, seed 0, k [1], confidence 0.95.
// Every k must be <= num_samples (pass@k needs at least k samples per item).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "pts/pts_config.h"
#include "rollout/engine.h"
#include "rollout/sampler.h"

namespace align {

struct EvalConfig {
  PtsModelSection model;    // path, dtype, device: as for `align pts`
  PtsDataSection data;      // path, system_prompt, limit: as for `align pts`
  nlohmann::json oracle;    // the oracle section as given (make_oracle reads it strictly)
  SamplingParams sampling;  // seed: the run seed; item i's samples use named_seed(seed, id) + s
  int64_t max_new_tokens = 512;
  int64_t num_samples = 1;  // completions per item (n)
  EngineOptions rollout;
  std::vector<int64_t> k = {1};  // pass@k reported for each
  double confidence = 0.95;      // of the intervals
  std::string output_dir;
};

// Reads and validates; `source` names the file in messages. Throws InputError.
EvalConfig parse_eval_config(const nlohmann::json& j, const std::string& source);
// Every field, defaults included: what the run actually used.
nlohmann::json to_json(const EvalConfig& config);

}  // namespace align
