#include "data/dataset_records.h"

#include "common/error.h"
#include "common/jsonl.h"
#include "data/dataset_files.h"

namespace align {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

std::string RecordLocation::str() const {
  if (!columns) return file + ":" + std::to_string(line);
  return file + ": row " + std::to_string(row);
}

std::string RecordLocation::error(const std::string& what) const {
  if (columns) {
    // "messages[1].role: ..." from a loader names the column the value came from.
    for (const ParquetColumn& c : *columns) {
      if (what.compare(0, c.name.size(), c.name) != 0 || what.size() == c.name.size()) continue;
      const char next = what[c.name.size()];
      if (next != ':' && next != '[' && next != '.') continue;
      // A complaint about the value's kind ("expected a string, got ...") shows what the file
      // declares the column to be.
      const bool kind = what.find("expected") != std::string::npos;
      return str() + ", column " + what + (kind ? " (column type " + c.type + ")" : "");
    }
  }
  return str() + ": " + what;
}

void for_each_record(const std::string& source, const std::string& key, const RecordFn& fn,
                     const RecordReadOptions& options) {
  const DatasetFiles dataset = resolve_dataset_files(source, key);
  RecordLocation at;
  auto done = [&] { return options.limit > 0 && at.index >= options.limit; };
  for (const std::string& file : dataset.files) {
    if (done()) return;
    at.file = file;
    if (!ends_with(file, ".parquet")) {
      JsonlReadOptions jsonl;
      jsonl.on_bad_line = options.on_bad_line;
      jsonl.limit = options.limit > 0 ? static_cast<size_t>(options.limit - at.index) : 0;
      at.columns = nullptr;
      at.row = 0;
      // for_each_jsonl puts "file:line: " before the errors of `fn`.
      for_each_jsonl(
          file,
          [&](const nlohmann::json& record, const JsonlLocation& where) {
            at.line = static_cast<int64_t>(where.line);
            fn(record, at);
            ++at.index;
          },
          jsonl);
      continue;
    }
    ParquetRows rows(file);
    at.columns = &rows.columns();
    at.line = 0;
    nlohmann::json record;
    while (!done() && rows.next(&record)) {
      at.row = rows.next_row() - 1;
      try {
        fn(record, at);
      } catch (const InputError& e) {
        throw InputError(at.error(e.what()));
      } catch (const nlohmann::json::exception& e) {
        throw InputError(at.error(e.what()));
      }
      ++at.index;
    }
  }
}

}  // namespace align
