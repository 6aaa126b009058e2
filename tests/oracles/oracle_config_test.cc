// make_oracle: types, unknown types and keys, key paths in messages; oracle_fields.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/error.h"
#include "oracles/oracle.h"

namespace align {
namespace {

using ::testing::HasSubstr;

std::string error_of(const nlohmann::json& config, const std::string& path = "oracle") {
  try {
    make_oracle(config, "pts.json", path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(OracleConfig, BuildsEveryType) {
  for (const char* type : {"math", "exact", "regex", "choice", "code", "safety"}) {
    nlohmann::json config = {{"type", type}};
    const auto oracle = make_oracle(config, "pts.json");
    EXPECT_EQ(oracle->name(), type);
  }
  EXPECT_EQ(make_oracle({{"type", "command"}, {"command", {"sh", "-c", "echo true"}}}, "pts.json")
                ->name(),
            "command");
  const auto insensitive = make_oracle({{"type", "exact"}, {"case_sensitive", false}}, "p");
  EXPECT_TRUE(insensitive->grade("ABC", {{"answer", "abc"}}));
  const auto regex = make_oracle({{"type", "regex"}, {"pattern", "^\\d+$"}}, "p");
  EXPECT_TRUE(regex->grade("123", nlohmann::json::object()));
  EXPECT_NO_THROW(regex->check_fields(nlohmann::json::object(), "d:1"));
}

TEST(OracleConfig, ErrorsNameTheFileKeyExpectedAndFound) {
  EXPECT_THAT(error_of({{"type", "maths"}}),
              HasSubstr("pts.json: oracle.type: expected one of math, exact, regex, choice, "
                        "code, safety, command, found \"maths\""));
  EXPECT_THAT(error_of(nlohmann::json::object()),
              HasSubstr("pts.json: missing required key oracle.type"));
  EXPECT_THAT(error_of({{"type", "math"}, {"answer_key", "x"}}),
              HasSubstr("pts.json: unknown config key oracle.answer_key"));
  EXPECT_THAT(error_of({{"type", "exact"}, {"case_sensitive", "no"}}),
              HasSubstr("pts.json: oracle.case_sensitive: expected true or false, found \"no\""));
  EXPECT_THAT(error_of({{"type", "regex"}, {"pattern", "(["}}),
              HasSubstr("pts.json: oracle.pattern"));
  EXPECT_THAT(error_of({{"type", "code"}, {"timeout_s", "10"}}),
              HasSubstr("pts.json: oracle.timeout_s: expected a number"));
  EXPECT_THAT(error_of({{"type", 3}}), HasSubstr("pts.json: oracle.type: expected a string"));
  EXPECT_THAT(error_of({{"type", "safety"}, {"x", 1}}, "pts.oracle"),
              HasSubstr("unknown config key pts.oracle.x"));
  EXPECT_THAT(error_of("math"), HasSubstr("pts.json: oracle must be an object"));
}

TEST(OracleConfig, FieldsHideThePrompt) {
  const nlohmann::json item = {{"prompt", "What is 2+2?"},
                               {"messages", {{{"role", "user"}, {"content", "hi"}}}},
                               {"answer", 4},
                               {"id", "q1"}};
  const nlohmann::json fields = oracle_fields(item);
  EXPECT_FALSE(fields.contains("prompt"));
  EXPECT_FALSE(fields.contains("messages"));
  EXPECT_EQ(fields.at("answer"), 4);
  EXPECT_EQ(fields.at("id"), "q1");
  // The default grade_all grades in order.
  const auto math = make_oracle({{"type", "math"}}, "p");
  EXPECT_EQ(math->grade_all({"#### 4", "#### 5", "\\boxed{4}"}, fields),
            (std::vector<bool>{true, false, true}));
}

}  // namespace
}  // namespace align
