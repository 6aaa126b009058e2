// align dpo --config FILE.json [--set section.key=value]... [--resume] [--write-reference OUT]
// Direct Preference Optimization (LoRA or full weights) on sequence pairs or PTS token pairs; see
// dpo/dpo_config.h for the config and dpo/dpo_recipe.h for what it writes.
#include "align/commands.h"
#include "align/config_help.h"
#include "align/launch.h"
#include "common/config_reader.h"
#include "common/run_info.h"
#include "dpo/dpo_config.h"
#include "dpo/dpo_recipe.h"

namespace align {
namespace {

// Above the config keys in --help: when the eval section is needed (docs/dpo.md).
constexpr const char* kEvalAdvice =
    "When to use the held-out eval (eval.queries + eval.oracle, on a dev set of its own): "
    "whenever\n"
    "DPO trains on token-level (PTS) pairs or at a high lr. rewards/accuracies and "
    "rewards/margins\n"
    "only score the pairs and can rise while generation breaks (a missing end-of-turn,\n"
    "repetition); sampling shows it as eval_completions/clipped_ratio, the share of samples that\n"
    "hit max_new_tokens without a stop token. eval.keep_best returns the best step's weights;\n"
    "eval.max_clipped_ratio keeps a step that clips more than that from being chosen.";

struct DpoCommandOptions {
  ConfigFlags flags;
  bool resume = false;
  std::string write_reference;
};

}  // namespace

void add_dpo_command(CLI::App& app) {
  auto opt = std::make_shared<DpoCommandOptions>();
  CLI::App* cmd = app.add_subcommand("dpo", "Direct Preference Optimization (LoRA or full)");
  add_config_flags<DpoConfig>(cmd, opt->flags, "docs/dpo.md");
  cmd->footer(std::string(kEvalAdvice) + "\n\n" + cmd->get_footer());
  cmd->add_flag("--resume", opt->resume, "Continue from the latest checkpoint in output.dir");
  cmd->add_option("--write-reference", opt->write_reference,
                  "Score data.train with the reference model, write it with ref_*_logps to this "
                  "JSONL, and exit (for reference.type precomputed)");
  cmd->callback([opt] {
    const std::optional<DpoConfig> read = read_config_flags<DpoConfig>(
        opt->flags,
        [](const nlohmann::json& j, const std::string& source) {
          return parse_dpo_config(j, source);
        },
        [](const DpoConfig& c) { return to_json(c); });
    if (!read) return;
    const DpoConfig config = *read;
    // --write-reference writes one JSONL and trains nothing: no run in output.dir to record.
    if (!opt->write_reference.empty()) {
      return write_dpo_reference(config, opt->write_reference,
                                 join_launched_job(config.model.device, "model.device"));
    }
    auto train = [&] {
      DpoRunOptions run;
      run.resume = opt->resume;
      run.source = opt->flags.config;
      run.group = join_launched_job(config.model.device, "model.device");
      run_dpo(config, run);
    };
    record_run(config.output.dir, resolved_device_name(config.model.device, "model.device"), train);
  });
}

}  // namespace align
