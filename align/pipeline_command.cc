// align pipeline --config FILE.json [--set key.path=value]... [--check]
// SFT -> eval -> PTS -> DPO -> eval in one run directory (align/pipeline.h); rerunning the same
// command skips finished stages and continues an interrupted one. --check reads and checks the
// whole config and prints the stages with their models and folders, running nothing.
#include <cstdio>

#include "align/commands.h"
#include "align/launch.h"
#include "align/pipeline.h"
#include "common/config_reader.h"
#include "common/run_info.h"
#include "model/device_options.h"

namespace align {
namespace {

struct PipelineCommandOptions {
  std::string config;
  std::vector<std::string> overrides;
  bool check = false;
};

}  // namespace

void add_pipeline_command(CLI::App& app) {
  auto opt = std::make_shared<PipelineCommandOptions>();
  CLI::App* cmd =
      app.add_subcommand("pipeline", "SFT -> eval -> PTS -> DPO -> eval in one run directory");
  cmd->add_option("--config", opt->config, "Pipeline config (JSON)")->required();
  cmd->footer(
      "Config (docs and align/pipeline.h): run_dir* (folder of the run), model (path*, dtype, "
      "device: the starting model), oracle (shared by eval and pts: docs/oracles.md), stages "
      "(default: sft, eval-before, pts, dpo, eval-after), and one section per stage holding that "
      "command's own config without model.path and output.dir, which the pipeline sets: sft, "
      "eval (both evals), pts, dpo. Their keys: align sft --help, align eval --help, align pts "
      "--help, align dpo --help; in --set write them with the section in front, e.g. "
      "--set pts.pts.p_gap=0.3 or --set sft.optimizer.lr=1e-4.");
  cmd->add_option("--set", opt->overrides,
                  "Override a value: section.key=value (sft.optimizer.lr=1e-3)");
  cmd->add_flag("--check", opt->check,
                "Only check the config (every stage's section and the oracle) and print the "
                "stages, running nothing");
  cmd->callback([opt] {
    require_single_process("pipeline");
    nlohmann::json j = load_config_file(opt->config);
    for (const auto& assignment : opt->overrides)
      apply_override(j, assignment);
    if (opt->check) {
      for (const PipelineStagePlan& p : check_pipeline_config(j, opt->config))
        std::printf("%-11s model %s -> %s\n", p.name.c_str(), p.model.c_str(), p.dir.c_str());
      std::printf("%s: config OK\n", opt->config.c_str());
      return;
    }
    // A rejected config leaves no trace, not even run.json (run_pipeline checks it again).
    check_pipeline_config(j, opt->config);
    std::string device = "auto";
    if (j.contains("model") && j["model"].is_object() && j["model"].contains("device") &&
        j["model"]["device"].is_string())
      device = j["model"]["device"].get<std::string>();
    try {
      device = parse_device(device, "model.device").str();
    } catch (const InputError&) {  // the pipeline's own check names the bad value
    }
    PipelineResult r;
    record_run(j["run_dir"].get<std::string>(), device, [&] { r = run_pipeline(j, opt->config); });
    std::printf("%s", r.table.c_str());
  });
}

}  // namespace align
