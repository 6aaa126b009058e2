// The math oracle: the completion's final answer (extract_math_answer, answer_extraction.h)
// equals the item's "answer" (a JSON number or string) under math_answers_equal
// (math_normalize.h). When the answer came from a "####" line or an "answer is" phrase and the
// whole rest of the line does not match, its first number is compared too ("The answer is 18
// dollars." matches 18). No answer found = failure. Config: {"type": "math"}, no other keys.
#pragma once

#include <memory>
#include <string>

#include "common/config_reader.h"
#include "oracles/oracle.h"

namespace align {

class MathOracle : public Oracle {
 public:
  bool grade(const std::string& completion, const nlohmann::json& fields) const override;
  void check_fields(const nlohmann::json& fields, const std::string& where) const override;
  std::string name() const override { return "math"; }
};

// True when `completion`'s extracted final answer equals `reference`.
bool math_completion_correct(const std::string& completion, const std::string& reference);

std::unique_ptr<Oracle> make_math_oracle(ConfigReader& config);

}  // namespace align
