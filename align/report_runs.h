// The run folders `align report` reads, whatever made them, and what kind each is:
//   pipeline  summary.json with "stages" (or stages.json): one subfolder per stage
//             (sft, eval-before, pts, dpo, eval-after)
//   sft, dpo, grpo  config.json and metrics.jsonl (checkpoints/, adapter/ | model/ | merged/);
//             grpo when config.json has a "grpo" section; dpo when it has a "dpo" or
//             "reference" section or metrics.jsonl has rewards/margins
//   pts       queries.jsonl or pivots.jsonl (pairs.jsonl, completions.jsonl, metrics.jsonl)
//   eval      summary.json and results.jsonl
// run.json (common/run_info.h), when present, names the command that made the folder and wins.
// A folder that is none of these is an InputError naming it and what was expected.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "align/report_charts.h"

namespace align {

enum class RunKind { kPipeline, kSft, kDpo, kGrpo, kPts, kEval };
const char* run_kind_name(RunKind kind);  // "pipeline", "sft", "dpo", "grpo", "pts", "eval"

struct ReportRun {
  std::string dir;   // as given on the command line
  std::string name;  // legend and column label: the folder's name (its path when names repeat)
  RunKind kind = RunKind::kPipeline;
  int index = 0;  // position on the command line: the run's colour

  // The folder of `stage` ("sft", "eval-before", "pts", "dpo", "grpo", "eval-after", or "eval" for
  // a standalone eval) in this run: RUN_DIR/<stage> for a pipeline (whether or not it ran), the run
  // itself for the standalone run of that kind, else "".
  std::string stage_dir(const std::string& stage) const;
  // How messages name a file of that stage: "sft/metrics.jsonl" in a pipeline, "metrics.jsonl"
  // otherwise.
  std::string stage_file(const std::string& stage, const std::string& file) const;
};

// Throws InputError: "run directory not found: DIR", or DIR is not a run folder, naming what was
// expected.
RunKind detect_run_kind(const std::string& dir);
std::vector<ReportRun> open_runs(const std::vector<std::string>& dirs);

// A whole-file JSON object, or null when the file does not exist; InputError when it is not an
// object.
nlohmann::json read_object_if_exists(const std::string& path);

// The lines of a metrics.jsonl (each an object with a numeric "step"; InputError with file:line
// otherwise).
struct MetricsLog {
  std::vector<nlohmann::json> lines;
  bool has(const std::string& key) const;
  // (x, y) for every line where both are numbers.
  std::vector<ChartPoint> series(const std::string& x_key, const std::string& y_key) const;
  // The last numeric value of `key`, NaN when none.
  double last(const std::string& key) const;
};
MetricsLog read_metrics(const std::string& path);

// The prompt of each query or item by id from the JSONL named in a config.json's data.path
// ("prompt", or the last user message of "messages"; ids as the recipes give them, "line-N"
// without one); empty when the config or that file is not readable from here.
std::map<std::string, std::string> prompts_from_config(const std::string& config_path);

}  // namespace align
