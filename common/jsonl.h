// JSON Lines input and output. Readers report the file and line of a malformed record; writers
// write atomically (temporary file, then rename) so a killed job leaves no half-written output.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "common/atomic_file.h"

namespace align {

// Where a record came from, for error messages: "file.jsonl:12".
struct JsonlLocation {
  std::string path;
  size_t line = 0;
  std::string str() const { return path + ":" + std::to_string(line); }
};

// What for_each_jsonl does beyond calling `fn` on every record.
struct JsonlReadOptions {
  // Called with "file:line: reason" for a line that is not valid JSON, which is then skipped;
  // unset: such a line throws InputError with that message.
  std::function<void(const std::string&)> on_bad_line;
  size_t limit = 0;  // stop after this many records (bad lines not counted); 0: read them all
};

// Calls `fn` for each non-blank line of `path` parsed as JSON. A line that is not valid JSON
// throws InputError naming the file and line (see JsonlReadOptions). InputError and
// nlohmann::json exceptions thrown by `fn` are re-thrown as InputError with the location
// prefixed.
void for_each_jsonl(const std::string& path,
                    const std::function<void(const nlohmann::json&, const JsonlLocation&)>& fn,
                    const JsonlReadOptions& options = {});

// Writes one JSON object per line; the file appears only after commit().
class JsonlWriter {
 public:
  explicit JsonlWriter(const std::string& path) : file_(path) {}
  void write(const nlohmann::json& record);
  void commit() { file_.commit(); }

 private:
  AtomicFile file_;
};

}  // namespace align
