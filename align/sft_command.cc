// align sft --config FILE.json [--set section.key=value]... [--resume]
// Supervised fine-tuning (LoRA or full weights) of a Hugging Face Phi-3-family model on JSONL
// conversations; see sft/sft_config.h for the config and sft/sft_recipe.h for what it writes.
#include "align/commands.h"
#include "align/config_help.h"
#include "align/launch.h"
#include "common/config_reader.h"
#include "common/run_info.h"
#include "sft/sft_config.h"
#include "sft/sft_recipe.h"

namespace align {
namespace {

struct SftCommandOptions {
  ConfigFlags flags;
  bool resume = false;
};

}  // namespace

void add_sft_command(CLI::App& app) {
  auto opt = std::make_shared<SftCommandOptions>();
  CLI::App* cmd = app.add_subcommand("sft", "Supervised fine-tuning (LoRA or full weights)");
  add_config_flags<SftConfig>(cmd, opt->flags, "examples/sft/README.md");
  cmd->add_flag("--resume", opt->resume, "Continue from the latest checkpoint in output.dir");
  cmd->callback([opt] {
    const std::optional<SftConfig> read = read_config_flags<SftConfig>(
        opt->flags,
        [](const nlohmann::json& j, const std::string& source) {
          return parse_sft_config(j, source);
        },
        [](const SftConfig& c) { return to_json(c); });
    if (!read) return;
    const SftConfig config = *read;
    record_run(config.output.dir, resolved_device_name(config.model.device, "model.device"), [&] {
      SftRunOptions run;
      run.resume = opt->resume;
      run.group = join_launched_job(config.model.device, "model.device");
      run_sft(config, run);
    });
  });
}

}  // namespace align
