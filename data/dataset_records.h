// The records of a dataset, one JSON object each, whatever holds them: the one reader behind the
// SFT, preference-pair, token-pair and query loaders (docs/datasets.md). A JSONL file gives one
// record per non-blank line (common/jsonl.h); a Parquet file one per row (data/parquet_rows.h),
// streamed a row group at a time; a folder or a hub dataset id the records of its split's files
// in order (data/dataset_files.h). So every shape and check of a loader is written once, on JSON.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/parquet_rows.h"

namespace align {

// Where a record came from.
struct RecordLocation {
  std::string file;
  int64_t line = 0;   // JSONL: the line, from 1; 0 in Parquet
  int64_t row = 0;    // Parquet: the row in the file, from 0 (as pyarrow and datasets index)
  int64_t index = 0;  // the record's position in the whole dataset, from 0
  const std::vector<ParquetColumn>* columns = nullptr;  // Parquet: the file's columns

  // "file.jsonl:12" or "file.parquet: row 17".
  std::string str() const;
  // `what` (an error about the record, "messages[1].role: expected a string, got null") with the
  // place in front: "file.jsonl:12: messages[1].role: ...", or, when it starts with a column of a
  // Parquet file, "file.parquet: row 17, column messages[1].role: ..., (column type ...)".
  std::string error(const std::string& what) const;
};

struct RecordReadOptions {
  // Called with the message of a JSONL line that is not JSON, which is then skipped; unset: such
  // a line throws InputError.
  std::function<void(const std::string&)> on_bad_line;
  int64_t limit = 0;  // stop after this many records; 0: all
};

using RecordFn = std::function<void(const nlohmann::json& record, const RecordLocation& at)>;

// Calls `fn` for each record of the dataset `source` names (resolve_dataset_files; `key` names
// it in errors). InputError and nlohmann::json exceptions from `fn` are re-thrown as InputError
// with RecordLocation::error's prefix. IoError when a file cannot be read.
void for_each_record(const std::string& source, const std::string& key, const RecordFn& fn,
                     const RecordReadOptions& options = {});

}  // namespace align
