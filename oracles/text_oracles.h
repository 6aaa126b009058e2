// Oracles that compare text, no program run.
//
// exact  {"type": "exact", "case_sensitive": true}: item "answer" (string, or a number written
//        as JSON writes it); success when the completion, trimmed of whitespace at both ends,
//        equals the trimmed answer (ASCII case folded when case_sensitive is false).
// regex  {"type": "regex", "pattern": "..."}: PCRE2 (data/regex.h: UTF-8, Unicode classes);
//        success when the pattern matches anywhere in the completion. Without a config pattern
//        each item needs a "pattern" string. Invalid patterns are InputErrors naming the config
//        key or the item. Invalid UTF-8 in a completion is repaired (U+FFFD) before matching.
// choice {"type": "choice"}: item "answer" a single letter A-Z (either case); success when
//        extract_choice (answer_extraction.h) finds the same letter, case-insensitively.
#pragma once

#include <memory>
#include <string>

#include "common/config_reader.h"
#include "data/regex.h"
#include "oracles/oracle.h"

namespace align {

class ExactOracle : public Oracle {
 public:
  explicit ExactOracle(bool case_sensitive) : case_sensitive_(case_sensitive) {}
  bool grade(const std::string& completion, const nlohmann::json& fields) const override;
  void check_fields(const nlohmann::json& fields, const std::string& where) const override;
  std::string name() const override { return "exact"; }

 private:
  bool case_sensitive_;
};

class RegexOracle : public Oracle {
 public:
  // `pattern` empty: each item brings its own. `where` names the config key in messages.
  RegexOracle(const std::string& pattern, const std::string& where);
  bool grade(const std::string& completion, const nlohmann::json& fields) const override;
  void check_fields(const nlohmann::json& fields, const std::string& where) const override;
  std::string name() const override { return "regex"; }

 private:
  std::unique_ptr<Regex> regex_;  // null when patterns come from the items
};

class ChoiceOracle : public Oracle {
 public:
  bool grade(const std::string& completion, const nlohmann::json& fields) const override;
  void check_fields(const nlohmann::json& fields, const std::string& where) const override;
  std::string name() const override { return "choice"; }
};

std::unique_ptr<Oracle> make_exact_oracle(ConfigReader& config);
std::unique_ptr<Oracle> make_regex_oracle(ConfigReader& config);
std::unique_ptr<Oracle> make_choice_oracle(ConfigReader& config);

}  // namespace align
