// align grpo --config FILE.json [--set section.key=value]... [--resume]
// Group Relative Policy Optimization (LoRA or full weights) on a query set graded by oracles; see
// grpo/grpo_config.h for the config and grpo/grpo_recipe.h for what it writes.
#include "align/commands.h"
#include "align/config_help.h"
#include "align/launch.h"
#include "common/config_reader.h"
#include "common/run_info.h"
#include "grpo/grpo_config.h"
#include "grpo/grpo_recipe.h"

namespace align {
namespace {

// Above the config keys in --help: what a step is, and the sections (docs/grpo.md).
constexpr const char* kOverview =
    "Each step samples grpo.num_generations completions for each of grpo.prompts_per_step\n"
    "queries of data.path with the engine (sampling, rollout), grades them with grpo.rewards\n"
    "(oracle pass/fail, a format regex, DAPO's overlong penalty; weighted by reward_weights),\n"
    "and takes TRL's GRPO loss (grpo.loss_type, beta, epsilon, epsilon_high, scale_rewards,\n"
    "importance_sampling_level, num_iterations) over training.grad_accum micro-batches.\n"
    "Sections: model, data, oracle, sampling, rollout, reference, grpo, optimizer, schedule,\n"
    "training, lora, eval (held-out pass@1 and keep_best, as align dpo), output.";

struct GrpoCommandOptions {
  ConfigFlags flags;
  bool resume = false;
};

}  // namespace

void add_grpo_command(CLI::App& app) {
  auto opt = std::make_shared<GrpoCommandOptions>();
  CLI::App* cmd =
      app.add_subcommand("grpo", "Group Relative Policy Optimization from oracle rewards");
  add_config_flags<GrpoConfig>(cmd, opt->flags, "docs/grpo.md");
  cmd->footer(std::string(kOverview) + "\n\n" + cmd->get_footer());
  cmd->add_flag("--resume", opt->resume, "Continue from the latest checkpoint in output.dir");
  cmd->callback([opt] {
    const std::optional<GrpoConfig> read = read_config_flags<GrpoConfig>(
        opt->flags,
        [](const nlohmann::json& j, const std::string& source) {
          return parse_grpo_config(j, source);
        },
        [](const GrpoConfig& c) { return to_json(c); });
    if (!read) return;
    const GrpoConfig config = *read;
    record_run(config.output.dir, resolved_device_name(config.model.device, "model.device"), [&] {
      GrpoRunOptions run;
      run.resume = opt->resume;
      run.source = opt->flags.config;
      run.group = join_launched_job(config.model.device, "model.device");
      run_grpo(config, run);
    });
  });
}

}  // namespace align
