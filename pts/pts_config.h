// The `align pts` run config: plain structs, one per JSON section, read strictly (unknown keys are
// errors naming their path) and written back resolved into the output folder.
//
//   {"model":    {"path", "dtype", "device"},
//    "data":     {"path", "system_prompt", "limit"},
//    "oracle":   {"type", ...}                          (pts/oracle.h)
//    "sampling": {"temperature", "top_p", "top_k", "min_p", "max_new_tokens"},
//    "rollout":  {"page_size", "kv_budget_tokens", "max_batch", "prefill_chunk",
//                 "max_cached_prefixes"},
//    "pts":      {"p_gap", "band_low", "band_high", "completions_per_query", "min_rollouts",
//                 "rollout_step", "max_rollouts", "confidence", "max_alternatives", "confirm",
//                 "confirm_rollouts", "queries_per_batch", "seed"},
//    "output":   {"dir"}}
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/config_reader.h"
#include "pts/pivotal_search.h"
#include "rollout/engine.h"

namespace align {

struct PtsModelSection {
  std::string path;             // Hugging Face model directory (with its tokenizer)
  std::string dtype = "auto";   // auto (bf16 on CUDA, fp32 on CPU), fp32, bf16
  std::string device = "auto";  // auto, cpu, cuda
};

struct PtsDataSection {
  std::string path;           // JSONL: "id", "prompt" or "messages", oracle fields
  std::string system_prompt;  // optional system turn before a "prompt"
  int64_t limit = 0;          // first N queries only; 0 = all
};

struct PtsConfig {
  PtsModelSection model;
  PtsDataSection data;
  nlohmann::json oracle;  // the oracle section as given (make_oracle reads it strictly)
  PtsOptions search;      // sampling + pts sections (stop ids filled in from the tokenizer)
  EngineOptions rollout;
  int64_t queries_per_batch = 16;  // queries searched together (one output commit per batch)
  std::string output_dir;
};

// The model, data and oracle sections of `j` (whose reader is `root`), as align pts and align eval
// both read them. Throws InputError naming the key.
void read_query_sections(const nlohmann::json& j, ConfigReader& root, PtsModelSection& model,
                         PtsDataSection& data, nlohmann::json& oracle);

// Reads and validates; `source` names the file in messages. Throws InputError.
PtsConfig parse_pts_config(const nlohmann::json& j, const std::string& source);
// Every field, defaults included: what the run actually used.
nlohmann::json to_json(const PtsConfig& config);

}  // namespace align
