// The `align sft` run config: the trainers' shared sections (train/train_sections.h: model,
// optimizer, schedule, training, lora, output) and SFT's data section, each defined once
// (common/config_fields.h), read strictly (unknown keys are errors naming their path) and written
// back resolved into the run's output folder. `align sft --help` lists every key.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "train/train_sections.h"

namespace align {

struct SftDataSection {
  std::string train;
  std::string eval;
  int64_t max_seq_len = 2048;
  bool packing = true;
  bool padding_free = false;
  int64_t rows_per_batch = 1;
  bool assistant_only_loss = true;
  bool skip_bad_lines = false;
  bool shuffle = true;

  template <typename V>
  void fields(V& v) {
    v.required("train", train,
               "{\"messages\"}, {\"prompt\", \"completion\"} or {\"text\"} records: a JSONL "
               "file, a Parquet file or folder, or a hub dataset ORG/NAME[@REV][:SPLIT] from the "
               "local cache (docs/datasets.md)");
    v("eval", eval, "optional held-out examples in the same shapes, read the same way");
    v("max_seq_len", max_seq_len, "tokens per row (longer examples are truncated)");
    v("packing", packing, "pack several examples into a row (attention blocked between them)");
    v("padding_free", padding_free,
      "rows only as long as their tokens (no padding to max_seq_len)");
    v("rows_per_batch", rows_per_batch, "rows of max_seq_len tokens per micro-batch");
    v("assistant_only_loss", assistant_only_loss, "loss on assistant turns only (messages)");
    v("skip_bad_lines", skip_bad_lines, "skip malformed lines (reported) instead of failing");
    v("shuffle", shuffle, "shuffle the examples every epoch");
  }
};

struct SftConfig : TrainSections {
  SftDataSection data;

  template <typename V>
  void fields(V& v) {
    TrainSections::fields(v);
    v.section("data", data);
  }
};

// Reads and validates; `source` names the file in messages. Throws InputError.
// `key_prefix`: where this config sits in a larger one (the pipeline's "sft"), for messages.
SftConfig parse_sft_config(const nlohmann::json& j, const std::string& source,
                           const std::string& key_prefix = "");
// Every field, defaults included: what the run actually used.
nlohmann::json to_json(const SftConfig& config);

}  // namespace align
