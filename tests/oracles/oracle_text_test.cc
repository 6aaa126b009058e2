// The exact, regex and choice oracles, and the choice-letter extraction.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "oracles/answer_extraction.h"
#include "oracles/text_oracles.h"

namespace align {
namespace {

using ::testing::HasSubstr;

TEST(OracleExact, TrimsAndHonoursCase) {
  const ExactOracle sensitive(true), insensitive(false);
  const nlohmann::json fields = {{"answer", "  Paris "}};
  EXPECT_TRUE(sensitive.grade("Paris", fields));
  EXPECT_TRUE(sensitive.grade("\n Paris\t\n", fields));
  EXPECT_FALSE(sensitive.grade("paris", fields));
  EXPECT_TRUE(insensitive.grade("PARIS", fields));
  EXPECT_FALSE(insensitive.grade("Paris.", fields));
  EXPECT_FALSE(sensitive.grade("The answer is Paris", fields));
  EXPECT_TRUE(sensitive.grade("42", {{"answer", 42}}));
  EXPECT_FALSE(sensitive.grade("", fields));
}

TEST(OracleRegex, MatchesAnywhereWithConfigOrItemPattern) {
  const RegexOracle configured("\\b(?:yes|YES)\\b", "cfg: oracle.pattern");
  EXPECT_TRUE(configured.grade("well... yes, it is", {}));
  EXPECT_FALSE(configured.grade("eyes only", {}));
  const RegexOracle per_item("", "cfg: oracle.pattern");
  EXPECT_TRUE(per_item.grade("id: 1234-5678", {{"pattern", "^id: \\d{4}-\\d{4}$"}}));
  EXPECT_FALSE(per_item.grade("id: 1234-567", {{"pattern", "^id: \\d{4}-\\d{4}$"}}));
  EXPECT_TRUE(per_item.grade("caf\xC3\xA9", {{"pattern", "\\p{L}{4}"}}));
  // Invalid UTF-8 in a completion is repaired, not an error.
  EXPECT_TRUE(
      per_item.grade("ab\xFF"
                     "cd",
                     {{"pattern", "cd"}}));
}

TEST(OracleRegex, InvalidPatternsAndMissingFieldsAreInputErrors) {
  try {
    RegexOracle("(unclosed", "pts.json: oracle.pattern");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("pts.json: oracle.pattern"));
  }
  const RegexOracle per_item("", "x");
  try {
    per_item.check_fields({{"pattern", "[a-"}}, "data.jsonl:9");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("data.jsonl:9: oracle field \"pattern\""));
  }
  try {
    per_item.check_fields({{"answer", "x"}}, "data.jsonl:10");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("data.jsonl:10: missing oracle field \"pattern\""));
  }
  EXPECT_THROW(per_item.grade("abc", {{"pattern", "("}}), InputError);
}

TEST(OracleChoice, ExtractsTheChosenLetter) {
  EXPECT_EQ(extract_choice("Comparing the options... \\boxed{B}"), 'B');
  EXPECT_EQ(extract_choice("So $\\boxed{\\text{(c)}}$"), 'C');
  EXPECT_EQ(extract_choice("Therefore the answer is (D)."), 'D');
  EXPECT_EQ(extract_choice("The answer is C because it is larger."), 'C');
  EXPECT_EQ(extract_choice("Answer: b"), 'B');
  EXPECT_EQ(extract_choice("**Answer:** (A)"), 'A');
  EXPECT_EQ(extract_choice("The correct answer is option E."), 'E');
  EXPECT_EQ(extract_choice("Let me think.\nA is wrong, B is wrong.\n(C)"), 'C');
  EXPECT_EQ(extract_choice("Reasoning...\n\nD.\n"), 'D');
  EXPECT_EQ(extract_choice("...\n**B)**"), 'B');
  // The last parseable phrase wins; an answer phrase followed by prose is skipped.
  EXPECT_EQ(extract_choice("The answer is (B). Checking my answer: it holds."), 'B');
  // "a" as an article is not a choice.
  EXPECT_EQ(extract_choice("The answer is a prime number."), 0);
  EXPECT_EQ(extract_choice("I think it is the second one."), 0);
  EXPECT_EQ(extract_choice(""), 0);
}

TEST(OracleChoice, GradesCaseInsensitively) {
  const ChoiceOracle oracle;
  EXPECT_TRUE(oracle.grade("The answer is (b).", {{"answer", "B"}}));
  EXPECT_TRUE(oracle.grade("\\boxed{B}", {{"answer", "b"}}));
  EXPECT_FALSE(oracle.grade("The answer is (C).", {{"answer", "B"}}));
  EXPECT_FALSE(oracle.grade("no idea", {{"answer", "B"}}));
  try {
    oracle.check_fields({{"answer", "AB"}}, "mmlu.jsonl:2");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), HasSubstr("mmlu.jsonl:2: oracle field \"answer\": expected one letter"));
  }
  EXPECT_THROW(oracle.check_fields({{"answer", 1}}, "x"), InputError);
}

}  // namespace
}  // namespace align
