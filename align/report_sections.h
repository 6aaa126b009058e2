// The sections of `align report`, each read from one part of a pipeline run directory:
//   RUN_DIR/summary.json                   stages (name, seconds, status), pairs   [optional]
//   RUN_DIR/sft/metrics.jsonl              SFT curves: loss, eval_loss, grad_norm, lr
//   RUN_DIR/eval-{before,after}/summary.json  eval table: pass@k with intervals, delta
//   RUN_DIR/pts/{queries,pairs,completions}.jsonl  PTS totals and the token view
//   RUN_DIR/dpo/metrics.jsonl              DPO curves: loss, reward margins and accuracies, logps
// A missing stage folder gives a section that says "not run"; unknown keys are ignored; malformed
// JSON throws InputError naming the file and line.
#pragma once

#include <cstdint>
#include <string>

namespace align {

struct ReportOptions {
  std::string run_dir;
  int64_t completions = 8;  // analysed completions shown in the token view (the first N)
};

std::string pipeline_section(const std::string& run_dir);
std::string sft_section(const std::string& run_dir);
std::string eval_section(const std::string& run_dir);
std::string pts_section(const std::string& run_dir, int64_t completions);
std::string dpo_section(const std::string& run_dir);

// The whole page: every section above, in pipeline order.
std::string build_report(const ReportOptions& options);

}  // namespace align
