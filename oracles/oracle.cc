#include "oracles/oracle.h"

#include "common/config_reader.h"
#include "oracles/code_oracle.h"
#include "oracles/command_oracle.h"
#include "oracles/math_oracle.h"
#include "oracles/safety_oracle.h"
#include "oracles/text_oracles.h"

namespace align {

std::vector<bool> Oracle::grade_all(const std::vector<std::string>& completions,
                                    const nlohmann::json& fields) const {
  std::vector<bool> verdicts;
  verdicts.reserve(completions.size());
  for (const std::string& completion : completions)
    verdicts.push_back(grade(completion, fields));
  return verdicts;
}

nlohmann::json oracle_fields(const nlohmann::json& item) {
  nlohmann::json fields = item;
  if (fields.is_object()) {
    for (const char* prompt : {"prompt", "messages", "text", "token_ids", "tools"})
      fields.erase(prompt);
  }
  return fields;
}

std::unique_ptr<Oracle> make_oracle(const nlohmann::json& config, const std::string& source,
                                    const std::string& path) {
  using Factory = std::unique_ptr<Oracle> (*)(ConfigReader&);
  static const std::vector<std::pair<std::string, Factory>> factories = {
      {"math", make_math_oracle},      {"exact", make_exact_oracle}, {"regex", make_regex_oracle},
      {"choice", make_choice_oracle},  {"code", make_code_oracle},   {"safety", make_safety_oracle},
      {"command", make_command_oracle}};
  ConfigReader reader(config, source, path);
  std::string type;
  reader.require("type", type);
  std::string names;
  for (const auto& [name, factory] : factories) {
    if (name == type) return factory(reader);
    names += (names.empty() ? "" : ", ") + name;
  }
  throw InputError(source + ": " + reader.full("type") + ": expected one of " + names +
                   ", found \"" + type + "\"");
}

}  // namespace align
