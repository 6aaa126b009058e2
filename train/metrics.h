// The training log OUTPUT/metrics.jsonl: one JSON object per logged step, e.g.
//   {"step": 10, "epoch": 0, "loss": 1.93, "lr": 2e-05, "grad_norm": 0.81, "tokens": 40960,
//    "tokens_per_s": 5123.4}
// (fields are the caller's; only an integer "step" is required). Each line is flushed when
// written, so a killed run keeps every finished line. On resume from step S, truncate_after(S)
// drops the lines a killed run logged after its last checkpoint, so the file ends up as an
// uninterrupted run's would.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace align {

class MetricsWriter {
 public:
  // Opens `path` for appending (created if missing). Throws IoError naming the path.
  explicit MetricsWriter(std::string path);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Appends `record` (an object with an integer "step") as one line and flushes it.
  void write(const nlohmann::json& record);

  // Keeps only the lines with step <= `step`, rewriting the file atomically (temporary file, then
  // rename), and reopens it for appending. A last line cut short by a kill (no newline, not
  // JSON) is dropped; any other malformed line throws InputError naming the file and line.
  // truncate_after(-1) empties the log (a fresh run into an old output directory).
  void truncate_after(int64_t step);

  const std::string& path() const { return path_; }

 private:
  void open();
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace align
