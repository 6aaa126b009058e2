// align dpo --config FILE.json [--set section.key=value]... [--resume] [--write-reference OUT]
// Direct Preference Optimization (LoRA or full weights) on sequence pairs or PTS token pairs; see
// dpo/dpo_config.h for the config and dpo/dpo_recipe.h for what it writes.
#include "align/commands.h"
#include "align/config_help.h"
#include "align/launch.h"
#include "common/config_reader.h"
#include "dpo/dpo_config.h"
#include "dpo/dpo_recipe.h"

namespace align {
namespace {

struct DpoCommandOptions {
  std::string config;
  std::vector<std::string> overrides;
  bool resume = false;
  std::string write_reference;
};

}  // namespace

void add_dpo_command(CLI::App& app) {
  auto opt = std::make_shared<DpoCommandOptions>();
  CLI::App* cmd = app.add_subcommand("dpo", "Direct Preference Optimization (LoRA or full)");
  cmd->footer(config_keys_help(describe_fields(DpoConfig{}), "docs/dpo.md"));
  cmd->add_option("--config", opt->config, "Run config (JSON with named sections)")->required();
  cmd->add_option("--set", opt->overrides, "Override a config value: section.key=value");
  cmd->add_flag("--resume", opt->resume, "Continue from the latest checkpoint in output.dir");
  cmd->add_option("--write-reference", opt->write_reference,
                  "Score data.train with the reference model, write it with ref_*_logps to this "
                  "JSONL, and exit (for reference.type precomputed)");
  cmd->callback([opt] {
    nlohmann::json j = load_config_file(opt->config);
    for (const auto& assignment : opt->overrides)
      apply_override(j, assignment);
    const DpoConfig config = parse_dpo_config(j, opt->config);
    DpoRunOptions run;
    run.resume = opt->resume;
    run.write_reference = opt->write_reference;
    run.group = join_launched_job(config.model.device, "model.device");
    run_dpo(config, run);
  });
}

}  // namespace align
