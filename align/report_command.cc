// align report RUN_DIR... [--output FILE.html] [--completions N] [--samples N]
// One self-contained HTML page for one run folder of any kind (pipeline, sft, dpo, pts, eval), or
// several side by side: curves overlaid, tables in columns. See align/report_sections.h and
// docs/report.md.
#include <cstdio>
#include <memory>

#include "align/commands.h"
#include "align/report_sections.h"
#include "common/atomic_file.h"
#include "common/error.h"

namespace align {
namespace {

struct ReportCommandOptions {
  ReportOptions report;
  std::string output;  // default RUN_DIR/report.html; required with several runs
};

}  // namespace

void add_report_command(CLI::App& app) {
  auto opt = std::make_shared<ReportCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "report", "One self-contained HTML report for run directories (side by side when several)");
  cmd->add_option("run_dir", opt->report.run_dirs,
                  "Run directories: align pipeline, sft, dpo, pts or eval output folders")
      ->required();
  cmd->add_option("--output", opt->output,
                  "HTML file to write (default RUN_DIR/report.html; required with several runs)");
  cmd->add_option("--completions", opt->report.completions,
                  "Analysed PTS completions shown in the token view (the first N)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--samples", opt->report.samples,
                  "Eval items shown with their generations (the first N)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([opt] {
    const std::vector<std::string>& dirs = opt->report.run_dirs;
    if (dirs.size() > 1 && opt->output.empty())
      throw InputError("align report: " + std::to_string(dirs.size()) +
                       " run directories compared: give --output FILE.html (a comparison page "
                       "belongs to none of the runs)");
    const std::string html = build_report(opt->report);
    const std::string output = opt->output.empty() ? dirs.front() + "/report.html" : opt->output;
    write_file_atomic(output, html);
    std::printf("report: %zu bytes -> %s\n", html.size(), output.c_str());
  });
}

}  // namespace align
