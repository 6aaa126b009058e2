// align pipeline --config FILE.json [--set key.path=value]...
// SFT -> eval -> PTS -> DPO -> eval in one run directory (align/pipeline.h); rerunning the same
// command skips finished stages and continues an interrupted one.
#include <cstdio>

#include "align/commands.h"
#include "align/pipeline.h"
#include "common/config_reader.h"

namespace align {
namespace {

struct PipelineCommandOptions {
  std::string config;
  std::vector<std::string> overrides;
};

}  // namespace

void add_pipeline_command(CLI::App& app) {
  auto opt = std::make_shared<PipelineCommandOptions>();
  CLI::App* cmd =
      app.add_subcommand("pipeline", "SFT -> eval -> PTS -> DPO -> eval in one run directory");
  cmd->add_option("--config", opt->config, "Pipeline config (JSON)")->required();
  cmd->add_option("--set", opt->overrides,
                  "Override a value: section.key=value (sft.optimizer.lr=1e-3)");
  cmd->callback([opt] {
    nlohmann::json j = load_config_file(opt->config);
    for (const auto& assignment : opt->overrides)
      apply_override(j, assignment);
    const PipelineResult r = run_pipeline(j, opt->config);
    std::printf("%s", r.table.c_str());
  });
}

}  // namespace align
