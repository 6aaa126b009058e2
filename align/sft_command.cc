// align sft --config FILE.json [--set section.key=value]... [--resume]
// Supervised fine-tuning (LoRA or full weights) of a Hugging Face Phi-3-family model on JSONL
// conversations; see sft/sft_config.h for the config and sft/sft_recipe.h for what it writes.
#include "align/commands.h"
#include "align/config_help.h"
#include "align/launch.h"
#include "common/config_reader.h"
#include "sft/sft_config.h"
#include "sft/sft_recipe.h"

namespace align {
namespace {

struct SftCommandOptions {
  std::string config;
  std::vector<std::string> overrides;
  bool resume = false;
};

}  // namespace

void add_sft_command(CLI::App& app) {
  auto opt = std::make_shared<SftCommandOptions>();
  CLI::App* cmd = app.add_subcommand("sft", "Supervised fine-tuning (LoRA or full weights)");
  cmd->footer(config_keys_help(describe_fields(SftConfig{}), "examples/sft/README.md"));
  cmd->add_option("--config", opt->config, "Run config (JSON with named sections)")->required();
  cmd->add_option("--set", opt->overrides, "Override a config value: section.key=value");
  cmd->add_flag("--resume", opt->resume, "Continue from the latest checkpoint in output.dir");
  cmd->callback([opt] {
    nlohmann::json j = load_config_file(opt->config);
    for (const auto& assignment : opt->overrides)
      apply_override(j, assignment);
    SftConfig config = parse_sft_config(j, opt->config);
    SftRunOptions run;
    run.resume = opt->resume;
    run.group = join_launched_job(config.model.device, "model.device");
    run_sft(config, run);
  });
}

}  // namespace align
