// The `align eval` run config, each section defined once (common/config_fields.h) and read
// strictly; `align eval --help` lists every key:
//   model, data, oracle, sampling, rollout, output: eval/query_sections.h (shared with align pts);
//   sampling also has num_samples (completions per item) and seed (item i's samples use
//   named_seed(seed, id) + s);
//   eval: {"k": [1, ...], "confidence"}: pass@k for each k (every k <= num_samples), intervals at
//   this confidence.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/query_sections.h"

namespace align {

struct EvalSamplingSection : SamplingSection {
  int64_t num_samples = 1;
  uint64_t seed = 0;

  template <typename V>
  void fields(V& v) {
    SamplingSection::fields(v);
    v("num_samples", num_samples, "completions per item (n)");
    v("seed", seed, "run seed: item i's samples use named_seed(seed, id) + s");
  }
};

struct EvalSection {
  std::vector<int64_t> k = {1};
  double confidence = 0.95;

  template <typename V>
  void fields(V& v) {
    v("k", k, "pass@k reported for each k (each <= sampling.num_samples)");
    v("confidence", confidence, "of the intervals");
  }
};

struct EvalConfig : QueryConfig<EvalSamplingSection> {
  EvalSection eval;

  template <typename V>
  void fields(V& v) {
    QueryConfig::fields(v);
    v.section("eval", eval);
  }
};

// Reads and validates; `source` names the file in messages. Throws InputError.
// `key_prefix`: where this config sits in a larger one (the pipeline's "eval"), for messages.
EvalConfig parse_eval_config(const nlohmann::json& j, const std::string& source,
                             const std::string& key_prefix = "");
// Every field, defaults included: what the run actually used.
nlohmann::json to_json(const EvalConfig& config);

}  // namespace align
