#include "align/config_help.h"

#include <algorithm>

namespace align {

std::string config_keys_help(const std::vector<ConfigKey>& keys, const std::string& docs) {
  size_t path_width = 0, type_width = 0, value_width = 0;
  for (const ConfigKey& k : keys) {
    path_width = std::max(path_width, k.path.size() + (k.required ? 1 : 0));
    type_width = std::max(type_width, k.type.size());
    value_width = std::max(value_width, std::min<size_t>(k.default_value.size(), 24));
  }
  std::string out =
      "Config keys (--config FILE.json, --set section.key=value; * required; key, type, "
      "default, meaning; more in " +
      docs + "):\n";
  for (const ConfigKey& k : keys) {
    std::string path = k.path + (k.required ? "*" : "");
    std::string value = k.required && k.default_value == "\"\"" ? "" : k.default_value;
    out += "  " + path + std::string(path_width - path.size() + 2, ' ');
    out += k.type + std::string(type_width - k.type.size() + 2, ' ') + value;
    out += std::string(value.size() < value_width ? value_width - value.size() + 2 : 2, ' ');
    out += k.help + "\n";
  }
  return out;
}

}  // namespace align
