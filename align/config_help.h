// The --help footer of a command that takes a run config: every key with its default and help,
// from the config's one definition (common/config_fields.h's describe_fields).
#pragma once

#include <string>
#include <vector>

#include "common/config_fields.h"

namespace align {

// "Config keys (--config FILE.json, --set section.key=value; * required; more in <docs>):" and
// one line per key: path, default, help.
std::string config_keys_help(const std::vector<ConfigKey>& keys, const std::string& docs);

}  // namespace align
