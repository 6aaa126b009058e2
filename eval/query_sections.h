// The run-config sections align eval and align pts share, each defined once
// (common/config_fields.h): the model to sample (model/device_options.h's ModelSection, plus how
// its base loads: QueryModelSection), the query set, the oracle that grades it (its own section,
// read by make_oracle), how completions are sampled, the engine (rollout/engine.h's EngineOptions)
// and the output folder. Both commands read their config with read_fields and check these sections
// with check_query_sections.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "kernels/sampling_op.h"
#include "model/device_options.h"
#include "model/quantize_fields.h"
#include "rollout/engine.h"

namespace align {

// The model section of a sampling config: the model, and whether its frozen projections load in
// NF4 (docs/qlora.md: PTS and eval on a quantised base, as bitsandbytes' load_in_4bit does; the
// same model.quantize and model.double_quant keys as the trainers').
struct QueryModelSection : ModelSection, QuantizeFields {
  template <typename V>
  void fields(V& v) {
    ModelSection::fields(v);
    QuantizeFields::fields(
        v,
        "nf4: load the four projections of every layer in 4-bit NormalFloat (bitsandbytes' "
        "scheme, as load_in_4bit does); embeddings, norms and lm_head in the model dtype");
  }
};

struct QueryDataSection {
  std::string path;
  std::string system_prompt;
  int64_t limit = 0;

  template <typename V>
  void fields(V& v) {
    v.required("path", path,
               "queries (\"id\", \"prompt\" or \"messages\", oracle fields): a JSONL file, a "
               "Parquet file or folder, or a hub dataset ORG/NAME[@REV][:SPLIT] from the local "
               "cache (docs/datasets.md)");
    v("system_prompt", system_prompt, "a system turn before each \"prompt\"");
    v("limit", limit, "the first N queries only; 0: all");
  }
};

struct SamplingSection {
  double temperature = 1.0;
  double top_p = 1.0;
  int64_t top_k = 0;
  double min_p = 0.0;
  int64_t max_new_tokens = 512;

  template <typename V>
  void fields(V& v) {
    v("temperature", temperature, "0: greedy");
    v("top_p", top_p, "nucleus sampling; 1: off");
    v("top_k", top_k, "0: off");
    v("min_p", min_p, "keep tokens with p >= min_p * p_max; 0: off");
    v("max_new_tokens", max_new_tokens, "completion length limit");
  }
  SamplingParams params(uint64_t seed) const { return {temperature, top_k, top_p, min_p, seed}; }
};

struct OutputDirSection {
  std::string dir;

  template <typename V>
  void fields(V& v) {
    v.required("dir", dir, "output folder");
  }
};

// The sections of a config that samples a query set, with its own kind of sampling section
// (align eval adds num_samples and seed); a command's config derives from it and adds its own.
template <typename Sampling>
struct QueryConfig {
  QueryModelSection model;
  QueryDataSection data;
  nlohmann::json oracle;  // the oracle section as given (make_oracle reads it strictly)
  Sampling sampling;
  EngineOptions rollout;
  OutputDirSection output;

  template <typename V>
  void fields(V& v) {
    v.section("model", model);
    v.section("data", data);
    v("oracle", oracle, "how completions are graded: {\"type\": ...} (docs/oracles.md)");
    v.section("sampling", sampling);
    v.section("rollout", rollout);
    v.section("output", output);
  }
};

// Range checks of the shared sections (and that the oracle section is an object); throws
// InputError "source: key.path: what".
void check_query_sections(const QueryDataSection& data, const nlohmann::json& oracle,
                          const SamplingSection& sampling, const EngineOptions& rollout,
                          const std::string& source);
// The sampling and rollout sections' part of it; `prefix` is where they sit ("eval." in align
// dpo's config).
void check_sampling_sections(const SamplingSection& sampling, const EngineOptions& rollout,
                             const std::string& source, const std::string& prefix);
template <typename Sampling>
void check_query_sections(const QueryConfig<Sampling>& c, const std::string& source) {
  check_query_sections(c.data, c.oracle, c.sampling, c.rollout, source);
}

}  // namespace align
