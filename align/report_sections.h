// The sections of `align report`, each over one or more runs (align/report_runs.h) shown side by
// side: one column per run in tables, one colour per run in charts.
//   Runs            each run's kind and folder
//   Run details     run.json (command, versions, device, host, times, status) and the resolved
//                   config.json of each run (of each stage for a pipeline) in a <details>
//   Pipeline        summary.json: each stage's status and seconds, the preference pairs
//   SFT, DPO, GRPO  metrics.jsonl: loss (vs step and vs elapsed_s), gradient norm, learning rate,
//                   tokens_per_s, peak memory; DPO also rewards and log-probs, GRPO the reward
//                   curve, completion length, kl, entropy and clip ratios, and sample
//                   completions of some steps (completions/step-N.jsonl); both the checkpoint
//                   evals (evals/step-N/, best.json) with the kept step
//   Evaluation      eval summaries (a pipeline's eval-before/after, an eval run's summary.json)
//   Samples         the first items of results.jsonl: prompt, each sample, success, finish_reason
//   PTS             queries.jsonl totals, the token view of completions.jsonl
// A section appears when some run has that stage; a pipeline without the stage's files says
// "not run (no sft/metrics.jsonl)". Unknown keys are ignored; malformed JSON throws InputError
// naming the file and line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "align/report_runs.h"

namespace align {

struct ReportOptions {
  std::vector<std::string> run_dirs;
  int64_t completions = 8;  // analysed PTS completions shown in the token view (the first N)
  int64_t samples = 4;      // eval items shown with their generations (the first N)
};

std::string runs_section(const std::vector<ReportRun>& runs);
std::string details_section(const std::vector<ReportRun>& runs);
std::string pipeline_section(const std::vector<ReportRun>& runs);
// stage "sft", "dpo" or "grpo".
std::string training_section(const std::vector<ReportRun>& runs, const std::string& stage,
                             int64_t samples);
std::string pts_section(const std::vector<ReportRun>& runs, int64_t completions);

// In align/report_evals.cc:
std::string eval_section(const std::vector<ReportRun>& runs);
std::string samples_section(const std::vector<ReportRun>& runs, int64_t samples);
// The evals/step-N/summary.json and best.json of a trainer's held-out eval in the `stage` ("dpo"
// or "grpo") folder of each run ("" when none has them); the first `samples` items of the
// starting model's results.jsonl beside the kept step's.
std::string checkpoint_evals_section(const std::vector<ReportRun>& runs, int64_t samples,
                                     const std::string& stage);

// The whole page: every section above, in pipeline order.
std::string build_report(const ReportOptions& options);

}  // namespace align
