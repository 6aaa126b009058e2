// The rows of one Parquet file as JSON objects, read with Apache Arrow's C++ library (libparquet,
// from the pinned pyarrow wheel: scripts/setup.sh, docs/datasets.md) one row group at a time, so
// a file is never held whole in memory. Each row becomes the object the JSONL readers take, the
// value of each column as pyarrow's to_pylist() and `datasets` give it to TRL:
//
//   Arrow type                               JSON
//   null, a null value (at any depth)        null
//   bool                                     true / false
//   int8..int64, uint8..uint64               integer
//   float16, float32, float64                number
//   string, large_string, string_view        string
//   list, large_list, fixed_size_list, views array   (datasets' Sequence / list features)
//   struct                                   object, one key per field (messages' {role, content})
//   map<string, V>                           object; map<K, V> with other keys: [[key, value], ...]
//   dictionary                               its value's type
//   extension                                its storage type
//   date, time, timestamp, duration,         string, Arrow's text of the value
//     decimal, interval
//   binary, large_binary, fixed_size_binary  null (images and audio are not text)
//   union, run-end encoded                   InputError at open, naming the column
//
// Only this file's .cc sees Arrow's headers (they need C++20); nothing else of align does.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace align {

// A top-level column and its Arrow type as Arrow prints it ("int64",
// "list<element: struct<role: string, content: string>>").
struct ParquetColumn {
  std::string name;
  std::string type;
};

class ParquetRows {
 public:
  // Opens `path` and reads its footer (schema, row groups). Throws IoError when it cannot be read
  // and InputError "<path>: ..." when it is not Parquet or holds a column of a type that is not
  // read (above).
  explicit ParquetRows(const std::string& path);
  ~ParquetRows();
  ParquetRows(const ParquetRows&) = delete;
  ParquetRows& operator=(const ParquetRows&) = delete;

  int64_t num_rows() const;
  const std::vector<ParquetColumn>& columns() const;

  // The next row into *row (row number next_row() - 1, counted from 0); false after the last.
  // Decoding happens one batch of a row group at a time; IoError when the file cannot be read.
  bool next(nlohmann::json* row);
  int64_t next_row() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace align
