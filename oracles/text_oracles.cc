#include "oracles/text_oracles.h"

#include <cctype>

#include "data/utf8.h"
#include "oracles/answer_extraction.h"
#include "oracles/oracle_support.h"

namespace align {
namespace {

std::string trimmed(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
    ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
    --e;
  return s.substr(b, e - b);
}

std::string folded(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool matches(const Regex& regex, const std::string& completion) {
  size_t begin = 0, end = 0;
  if (is_valid_utf8(completion)) return regex.find(completion, 0, &begin, &end);
  return regex.find(repair_utf8(completion), 0, &begin, &end);
}

}  // namespace

bool ExactOracle::grade(const std::string& completion, const nlohmann::json& fields) const {
  check_fields(fields, "oracle fields");
  const std::string answer = trimmed(answer_text(fields.at("answer"), "", "answer"));
  const std::string text = trimmed(completion);
  return case_sensitive_ ? text == answer : folded(text) == folded(answer);
}

void ExactOracle::check_fields(const nlohmann::json& fields, const std::string& where) const {
  answer_text(require_field(fields, "answer", where, "exact"), where, "answer");
}

RegexOracle::RegexOracle(const std::string& pattern, const std::string& where) {
  if (!pattern.empty()) regex_ = std::make_unique<Regex>(pattern, Regex::Syntax::kRegex, where);
}

bool RegexOracle::grade(const std::string& completion, const nlohmann::json& fields) const {
  if (regex_) return matches(*regex_, completion);
  check_fields(fields, "oracle fields");
  const Regex regex(fields.at("pattern").get<std::string>(), Regex::Syntax::kRegex,
                    "oracle field \"pattern\"");
  return matches(regex, completion);
}

void RegexOracle::check_fields(const nlohmann::json& fields, const std::string& where) const {
  if (regex_) return;
  const nlohmann::json& pattern = require_field(fields, "pattern", where, "regex");
  if (!pattern.is_string() || pattern.get<std::string>().empty())
    field_type_error(where, "pattern", "a non-empty regex string", pattern);
  Regex(pattern.get<std::string>(), Regex::Syntax::kRegex, where + ": oracle field \"pattern\"");
}

bool ChoiceOracle::grade(const std::string& completion, const nlohmann::json& fields) const {
  check_fields(fields, "oracle fields");
  const std::string answer = trimmed(fields.at("answer").get<std::string>());
  return extract_choice(completion) == std::toupper(static_cast<unsigned char>(answer[0]));
}

void ChoiceOracle::check_fields(const nlohmann::json& fields, const std::string& where) const {
  const nlohmann::json& answer = require_field(fields, "answer", where, "choice");
  const std::string text = answer.is_string() ? trimmed(answer.get<std::string>()) : "";
  if (text.size() != 1 || !std::isalpha(static_cast<unsigned char>(text[0])))
    field_type_error(where, "answer", "one letter A-Z", answer);
}

std::unique_ptr<Oracle> make_exact_oracle(ConfigReader& config) {
  bool case_sensitive = true;
  config.get("case_sensitive", case_sensitive);
  config.finish();
  return std::make_unique<ExactOracle>(case_sensitive);
}

std::unique_ptr<Oracle> make_regex_oracle(ConfigReader& config) {
  std::string pattern;
  config.get("pattern", pattern);
  config.finish();
  if (config.has("pattern") && pattern.empty())
    throw InputError(config.source() + ": " + config.full("pattern") +
                     ": expected a non-empty regex");
  return std::make_unique<RegexOracle>(pattern, config.source() + ": " + config.full("pattern"));
}

std::unique_ptr<Oracle> make_choice_oracle(ConfigReader& config) {
  config.finish();
  return std::make_unique<ChoiceOracle>();
}

}  // namespace align
