// The PTS output folder, appended one batch of queries at a time so a killed run loses no
// finished query and never duplicates a line.
//
// Files (JSONL, documented in docs/pts.md): pivots.jsonl, pairs.jsonl, queries.jsonl,
// completions.jsonl, metrics.jsonl; plus config.json (the resolved config) and progress.json.
// A batch's lines are appended and fsynced, then progress.json is replaced atomically with the
// number of queries finished, every file's size after them, and running totals. Opening a folder
// with a progress.json cuts each file back to its recorded size (dropping whatever a killed run
// wrote for an unfinished batch) and continues after the recorded queries.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace align {

class PtsOutput {
 public:
  static const std::vector<std::string>& files();  // the JSONL files, by name

  // Opens `dir` (created if missing). `config` is the resolved run config and
  // `queries_fingerprint` that of the query file's contents (file_fingerprint): a folder holding
  // a run with a different config, or over a query file edited since, throws InputError naming
  // the first differing key or the file, so a changed command never mixes two runs' outputs.
  PtsOutput(std::string dir, const nlohmann::json& config, const std::string& queries_fingerprint);

  int64_t queries_done() const { return progress_.value("queries_done", int64_t{0}); }
  // Running totals over every finished batch ("kept", "pivots", ...), resumed runs included.
  const nlohmann::json& totals() const { return progress_.at("totals"); }

  // Appends one finished batch: lines[file] for each file name, then commits progress with
  // `queries` more queries done and `add_totals` added to the totals.
  void append_batch(const std::map<std::string, std::vector<nlohmann::json>>& lines,
                    int64_t queries, const nlohmann::json& add_totals);

  const std::string& dir() const { return dir_; }

 private:
  std::string path(const std::string& file) const { return dir_ + "/" + file; }
  std::string dir_;
  nlohmann::json progress_;
};

}  // namespace align
