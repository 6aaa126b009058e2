// The `align` command line. Library code throws typed errors; this is the one place that catches
// them, prints one clear message and exits non-zero.
#include <c10/util/Exception.h>
#include <CLI/CLI.hpp>

#include <iostream>

#include "align/commands.h"
#include "common/error.h"
#include "common/run_info.h"

int main(int argc, char** argv) {
  align::set_command_line(argc, argv);  // for run.json (common/run_info.h)
  CLI::App app{"align: SFT, Pivotal Token Search and DPO for Phi-4-class models", "align"};
  app.option_defaults()->always_capture_default();  // --help shows every default
  app.require_subcommand(1);
  app.set_version_flag("--version", "align 0.1.0");
  align::add_init_command(app);
  align::add_tokenize_command(app);
  align::add_logprobs_command(app);
  align::add_generate_command(app);
  align::add_sft_command(app);
  align::add_pts_command(app);
  align::add_dpo_command(app);
  align::add_grpo_command(app);
  align::add_eval_command(app);
  align::add_pipeline_command(app);
  align::add_report_command(app);
  align::add_gguf_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const align::Error& e) {
    std::cerr << "align: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "align: error (torch): " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "align: internal error: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
