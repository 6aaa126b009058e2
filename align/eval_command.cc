// align eval --config FILE.json [--set section.key=value]...
// Success rate (pass@k with intervals) of a model on a JSONL task set graded by an oracle: see
// eval/eval_config.h for the config and eval/eval_recipe.h for what it writes. Rerunning
// overwrites.
#include <cstdio>
#include <utility>

#include "align/commands.h"
#include "align/config_help.h"
#include "align/launch.h"
#include "common/config_reader.h"
#include "common/run_info.h"
#include "eval/eval_config.h"
#include "eval/eval_recipe.h"

namespace align {
namespace {

struct EvalCommandOptions {
  ConfigFlags flags;
};

}  // namespace

void add_eval_command(CLI::App& app) {
  auto opt = std::make_shared<EvalCommandOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Success rate (pass@k) of a model on a task set");
  add_config_flags<EvalConfig>(cmd, opt->flags, "docs/eval.md");
  cmd->callback([opt] {
    require_single_process("eval");
    const std::optional<EvalConfig> read = read_config_flags<EvalConfig>(
        opt->flags,
        [](const nlohmann::json& j, const std::string& source) {
          return parse_eval_config(j, source);
        },
        [](const EvalConfig& c) { return to_json(c); });
    if (!read) return;
    const EvalConfig config = *read;
    EvalSummary s;
    record_run(config.output.dir, resolved_device_name(config.model.device, "model.device"),
               [&] { s = run_eval(config, opt->flags.config); });
    std::printf(
        "eval: %lld items x %lld samples, oracle %s, %.1f tokens per completion (%.1f%% clipped "
        "at max_new_tokens), %.1f s\n",
        static_cast<long long>(s.items), static_cast<long long>(s.num_samples), s.oracle.c_str(),
        s.mean_tokens, 100 * s.clipped_ratio, s.seconds);
    std::printf(
        "%6s  %8s  %s\n", "k", "pass@k",
        (std::to_string(static_cast<int>(config.eval.confidence * 100 + 0.5)) + "% interval")
            .c_str());
    for (const EvalPassAtK& p : s.pass) {
      std::printf("%6lld  %8.4f  [%.4f, %.4f]", static_cast<long long>(p.k), p.value.mean,
                  p.value.low, p.value.high);
      if (p.has_wilson)
        std::printf("  (Wilson over items [%.4f, %.4f])", p.wilson.low, p.wilson.high);
      std::printf("\n");
    }
    for (const auto& [rate, r] : s.rates) {
      std::printf("%s: %.4f [%.4f, %.4f] (%lld items)", rate.label.c_str(), r.value.mean,
                  r.value.low, r.value.high, static_cast<long long>(r.items));
      if (r.has_wilson)
        std::printf("  (Wilson over items [%.4f, %.4f])", r.wilson.low, r.wilson.high);
      std::printf("\n");
    }
    std::printf("-> %s\n", config.output.dir.c_str());
  });
}

}  // namespace align
