// Run configs: JSON files with named sections, overrides from the command line, and strict reading
// into plain structs. Unknown keys are errors naming their full path ("optimizer.lrr"), so a typo
// never silently falls back to a default.
//
//   nlohmann::json j = load_config_file("sft.json");
//   apply_override(j, "optimizer.lr=5e-6");           // from --set
//   ConfigReader root(j, "sft.json");
//   ConfigReader opt = root.section("optimizer");
//   opt.get("lr", config.lr);                          // optional: keeps the default when absent
//   opt.finish(); root.finish();                       // throws on keys nobody read
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <type_traits>
#include <vector>

#include "common/error.h"
#include "common/json_parse.h"

namespace align {

// Parses a JSON config file; errors name the file.
nlohmann::json load_config_file(const std::string& path);

// "a.b.c=value": sets j["a"]["b"]["c"]. The value is parsed as JSON when it parses (5e-6, true,
// [1,2], "x"), else taken as a string (so --set output.dir=runs/x works unquoted).
void apply_override(nlohmann::json& j, const std::string& assignment);

// The dotted paths where two resolved configs differ (keys of one missing in the other count),
// in key order, leaving out `allowed` paths (and everything below them).
std::vector<std::string> config_differences(const nlohmann::json& a, const nlohmann::json& b,
                                            const std::set<std::string>& allowed = {});

// Throws InputError "<source>: <field>: <what>" unless `ok`: the range checks after reading.
void check_config(bool ok, const std::string& source, const std::string& field,
                  const std::string& what);

class ConfigReader {
 public:
  // `object` must outlive the reader. `source` names the file in messages.
  ConfigReader(const nlohmann::json& object, std::string source, std::string path = "");

  // Reads `key` into `value` when present (type-checked); absent keys keep the default.
  template <typename T>
  void get(const std::string& key, T& value) {
    known_->insert(full(key));
    if (!object_.contains(key)) return;
    seen_->insert(key);
    const nlohmann::json& found = object_.at(key);
    // An integer key takes only a JSON integer (2.5 is not silently cut to 2), an unsigned one
    // only a non-negative integer.
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if (!found.is_number_integer() || (std::is_unsigned_v<T> && !found.is_number_unsigned())) {
        throw InputError(source_ + ": " + full(key) + ": expected " + type_name(value) +
                         ", found " + json_excerpt(found));
      }
    }
    try {
      value = found.get<T>();
    } catch (const nlohmann::json::exception&) {
      throw InputError(source_ + ": " + full(key) + ": expected " + type_name(value) + ", found " +
                       json_excerpt(found));
    }
  }
  // Like get(), but the key must be present.
  template <typename T>
  void require(const std::string& key, T& value) {
    known_->insert(full(key));
    if (!object_.contains(key)) throw InputError(source_ + ": missing required key " + full(key));
    get(key, value);
  }
  bool has(const std::string& key) const {
    known_->insert(full(key));
    return object_.contains(key);
  }
  // A nested object; an absent section reads as empty (all defaults).
  ConfigReader section(const std::string& key);
  // Throws InputError listing every key of this object that was never read, each with the
  // closest key the config does know ("did you mean optimizer.lr?"), anywhere in it.
  void finish() const;
  // "optimizer.lr": the path of `key` inside the config, for messages.
  std::string full(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }
  const std::string& source() const { return source_; }

 private:
  template <typename T>
  static std::string type_name(const T&) {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>) return "an integer >= 0";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    if constexpr (std::is_same_v<T, std::string>) return "a string";
    return "a value of another type";
  }
  const nlohmann::json& object_;
  std::string source_;
  std::string path_;
  ConfigReader(const nlohmann::json& object, std::string source, std::string path,
               std::shared_ptr<std::set<std::string>> known);
  std::shared_ptr<std::set<std::string>> seen_;
  std::shared_ptr<std::set<std::string>> known_;  // every key path asked for, in the whole config
  static const nlohmann::json kEmpty;
};

}  // namespace align
