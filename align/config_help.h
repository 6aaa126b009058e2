// The --help footer of a command that takes a run config: every key with its default and help,
// from the config's one definition (common/config_fields.h's describe_fields).
#pragma once

#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>

#include "common/config_fields.h"
#include "common/config_reader.h"

namespace align {

// The options every config-driven command (sft, dpo, pts, eval) takes.
struct ConfigFlags {
  std::string config;
  std::vector<std::string> overrides;
  bool print_config = false;
};

// Adds --config, --set and --print-config to `cmd`, and the footer listing `Config`'s keys.
template <typename Config>
void add_config_flags(CLI::App* cmd, ConfigFlags& flags, const std::string& docs);

// --config read with the --set overrides applied and parsed with `parse`; with --print-config
// the resolved config (the defaults without --config) is printed and nullopt returned. Throws
// InputError when --config is missing otherwise.
template <typename Config>
std::optional<Config> read_config_flags(
    const ConfigFlags& flags,
    const std::function<Config(const nlohmann::json&, const std::string&)>& parse,
    const std::function<nlohmann::json(const Config&)>& to_json);

// "Config keys (--config FILE.json, --set section.key=value; * required; more in <docs>):" and
// one line per key: path, default, help.
std::string config_keys_help(const std::vector<ConfigKey>& keys, const std::string& docs);

template <typename Config>
void add_config_flags(CLI::App* cmd, ConfigFlags& flags, const std::string& docs) {
  cmd->add_option("--config", flags.config, "Run config (JSON with named sections)");
  cmd->add_option("--set", flags.overrides, "Override a config value: section.key=value");
  cmd->add_flag("--print-config", flags.print_config,
                "Print the resolved config as JSON (without --config: every default) and exit");
  cmd->footer(config_keys_help(describe_fields(Config{}), docs));
}

template <typename Config>
std::optional<Config> read_config_flags(
    const ConfigFlags& flags,
    const std::function<Config(const nlohmann::json&, const std::string&)>& parse,
    const std::function<nlohmann::json(const Config&)>& to_json) {
  if (flags.config.empty()) {
    if (!flags.print_config)
      throw InputError("--config is required (a JSON run config; see --help)");
    std::printf("%s\n", to_json_fields(Config{}).dump(2).c_str());
    return std::nullopt;
  }
  nlohmann::json j = load_config_file(flags.config);
  for (const auto& assignment : flags.overrides)
    apply_override(j, assignment);
  Config config = parse(j, flags.config);
  if (flags.print_config) {
    std::printf("%s\n", to_json(config).dump(2).c_str());
    return std::nullopt;
  }
  return config;
}

}  // namespace align
