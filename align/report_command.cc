// align report RUN_DIR [--output FILE.html] [--completions N]
// One self-contained HTML page for a pipeline run: training curves, the eval table, PTS totals and
// the token view of analysed completions. See align/report_sections.h and docs/report.md.
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
  std::string output;  // default RUN_DIR/report.html
};

}  // namespace

void add_report_command(CLI::App& app) {
  auto opt = std::make_shared<ReportCommandOptions>();
  CLI::App* cmd =
      app.add_subcommand("report", "One self-contained HTML report for a run directory");
  cmd->add_option("run_dir", opt->report.run_dir, "Pipeline run directory")->required();
  cmd->add_option("--output", opt->output, "HTML file to write (default RUN_DIR/report.html)");
  cmd->add_option("--completions", opt->report.completions,
                  "Analysed completions shown in the token view (the first N)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([opt] {
    const std::string html = build_report(opt->report);
    const std::string output =
        opt->output.empty() ? opt->report.run_dir + "/report.html" : opt->output;
    write_file_atomic(output, html);
    std::printf("report: %zu bytes -> %s\n", html.size(), output.c_str());
  });
}

}  // namespace align
