#include "oracles/math_oracle.h"

#include "oracles/answer_extraction.h"
#include "oracles/math_normalize.h"
#include "oracles/oracle_support.h"

namespace align {

bool math_completion_correct(const std::string& completion, const std::string& reference) {
  using Source = ExtractedAnswer::Source;
  const ExtractedAnswer answer = extract_math_answer(completion);
  if (answer.source == Source::kNone) return false;
  if (math_answers_equal(answer.text, reference)) return true;
  if (answer.source != Source::kHashes && answer.source != Source::kAnswerPhrase) return false;
  MathNumber expected;
  const std::string number = first_number(answer.text);
  return !number.empty() && parse_math_number(reference, &expected) &&
         math_answers_equal(number, reference);
}

bool MathOracle::grade(const std::string& completion, const nlohmann::json& fields) const {
  check_fields(fields, "oracle fields");
  return math_completion_correct(completion, answer_text(fields.at("answer"), "", "answer"));
}

void MathOracle::check_fields(const nlohmann::json& fields, const std::string& where) const {
  const std::string text =
      answer_text(require_field(fields, "answer", where, "math"), where, "answer");
  if (normalize_math_text(text).empty()) {
    field_type_error(where, "answer", "a non-empty answer", fields.at("answer"));
  }
}

std::unique_ptr<Oracle> make_math_oracle(ConfigReader& config) {
  config.finish();
  return std::make_unique<MathOracle>();
}

}  // namespace align
