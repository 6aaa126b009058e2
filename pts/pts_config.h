// The `align pts` run config, each section defined once (common/config_fields.h) and read
// strictly; `align pts --help` lists every key:
//   model, data, oracle, sampling, rollout, output: eval/query_sections.h (shared with align eval);
//   pts: the search (PtsOptions::fields, pts/pivotal_search.h) and queries_per_batch.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/query_sections.h"
#include "pts/pivotal_search.h"

namespace align {

struct PtsSection {
  PtsOptions search;
  int64_t queries_per_batch = 16;

  template <typename V>
  void fields(V& v) {
    search.fields(v);
    v("queries_per_batch", queries_per_batch, "queries searched together (one output commit)");
  }
};

struct PtsConfig : QueryConfig<SamplingSection> {
  PtsSection pts;

  template <typename V>
  void fields(V& v) {
    QueryConfig::fields(v);
    v.section("pts", pts);
  }

  // The search options with the sampling section and `stop_token_ids` filled in.
  PtsOptions search_options(std::vector<TokenId> stop_token_ids) const;
};

// Reads and validates; `source` names the file in messages. Throws InputError.
// `key_prefix`: where this config sits in a larger one (the pipeline's "pts"), for messages.
PtsConfig parse_pts_config(const nlohmann::json& j, const std::string& source,
                           const std::string& key_prefix = "");
// Every field, defaults included: what the run actually used.
nlohmann::json to_json(const PtsConfig& config);

}  // namespace align
