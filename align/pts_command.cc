// align pts --config FILE.json [--set section.key=value]...
// Pivotal Token Search: see pts/pts_config.h for the config and pts/pts_recipe.h for what it
// writes. Rerunning the same command continues a killed run after its last finished batch.
#include <cstdio>

#include "align/commands.h"
#include "align/config_help.h"
#include "align/launch.h"
#include "common/config_reader.h"
#include "common/run_info.h"
#include "pts/pts_config.h"
#include "pts/pts_recipe.h"

namespace align {
namespace {

struct PtsCommandOptions {
  ConfigFlags flags;
};

}  // namespace

void add_pts_command(CLI::App& app) {
  auto opt = std::make_shared<PtsCommandOptions>();
  CLI::App* cmd = app.add_subcommand("pts", "Pivotal Token Search: token-level preference pairs");
  add_config_flags<PtsConfig>(cmd, opt->flags, "docs/pts.md");
  cmd->callback([opt] {
    const std::optional<PtsConfig> read = read_config_flags<PtsConfig>(
        opt->flags,
        [](const nlohmann::json& j, const std::string& source) {
          return parse_pts_config(j, source);
        },
        [](const PtsConfig& c) { return to_json(c); });
    if (!read) return;
    const PtsConfig config = *read;
    PtsRunSummary s;
    std::shared_ptr<ProcessGroup> group;
    record_run(config.output.dir, resolved_device_name(config.model.device, "model.device"), [&] {
      group = join_launched_job(config.model.device, "model.device");
      s = run_pts(config, opt->flags.config, group);
    });
    if (group && !group->is_main()) return;
    std::printf(
        "pts: %lld queries, %lld in the band, %lld pivots, %lld pairs, %lld rollouts, "
        "%lld tokens generated (%.1f s this run) -> %s\n",
        static_cast<long long>(s.queries), static_cast<long long>(s.kept),
        static_cast<long long>(s.pivots), static_cast<long long>(s.pairs),
        static_cast<long long>(s.rollouts), static_cast<long long>(s.tokens_generated), s.seconds,
        config.output.dir.c_str());
  });
}

}  // namespace align
