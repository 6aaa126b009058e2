// The math oracle: answer extraction (boxed, ####, "answer is", last number), numeric and
// symbolic normalisation, and near-miss wrong answers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "oracles/answer_extraction.h"
#include "oracles/math_normalize.h"
#include "oracles/math_oracle.h"
#include "oracles/oracle.h"

namespace align {
namespace {

bool correct(const std::string& completion, const nlohmann::json& answer) {
  MathOracle oracle;
  return oracle.grade(completion, {{"answer", answer}});
}

TEST(OracleMath, ExtractsTheLastBoxedWithNestedBraces) {
  std::string content;
  ASSERT_TRUE(last_boxed("first \\boxed{1} then \\boxed{\\frac{\\sqrt{3}}{2}} done", &content));
  EXPECT_EQ(content, "\\frac{\\sqrt{3}}{2}");
  ASSERT_TRUE(last_boxed("so \\boxed 42$.", &content));
  EXPECT_EQ(content, "42");
  // An unclosed last box falls back to the previous well-formed one.
  ASSERT_TRUE(last_boxed("\\boxed{7} and then \\boxed{8", &content));
  EXPECT_EQ(content, "7");
  EXPECT_FALSE(last_boxed("no box here, \\boxedx{3}", &content));
  EXPECT_EQ(extract_math_answer("\\fbox{x+1}").text, "x+1");
}

TEST(OracleMath, ExtractionFallsBackInOrder) {
  using Source = ExtractedAnswer::Source;
  const ExtractedAnswer hashes = extract_math_answer("She pays 3*6=18.\n#### 18\n");
  EXPECT_EQ(hashes.source, Source::kHashes);
  EXPECT_EQ(hashes.text, "18");
  const ExtractedAnswer phrase = extract_math_answer("Adding up, the Answer is: 1,234 apples.");
  EXPECT_EQ(phrase.source, Source::kAnswerPhrase);
  EXPECT_EQ(phrase.text, "1,234 apples.");
  const ExtractedAnswer next_line = extract_math_answer("Final answer:\n\n  -7\n");
  EXPECT_EQ(next_line.text, "-7");
  const ExtractedAnswer last = extract_math_answer("We get 3 + 4 = 7, then 7 * 2 = 14.");
  EXPECT_EQ(last.source, Source::kLastNumber);
  EXPECT_EQ(last.text, "14");
  EXPECT_EQ(extract_math_answer("I do not know.").source, Source::kNone);
  EXPECT_EQ(last_number("x = -2.5, so y=10-3"), "3");
  EXPECT_EQ(last_number("a total of 1,234,567 and 1,2"), "2");
  EXPECT_EQ(first_number("costs $1,200.50 in 2024"), "1,200.50");
}

TEST(OracleMath, GradesGsm8kStyleCompletions) {
  EXPECT_TRUE(correct("Janet sells 16 - 3 - 4 = 9 eggs for $2 each: 9 * 2 = 18.\n#### 18", 18));
  EXPECT_TRUE(correct("The total is 1200 + 34 = 1234.\n#### 1,234", 1234));
  EXPECT_TRUE(correct("#### $1,234.00", "1234"));
  EXPECT_TRUE(correct("So the answer is 18 dollars per day.", 18));
  EXPECT_TRUE(correct("The answer is $18.", "18"));
  EXPECT_TRUE(correct("3 + 4 = 7 and doubled that is 14", 14));
  EXPECT_FALSE(correct("3 + 4 = 7 and doubled that is 14 (not 12)", 14));
  EXPECT_FALSE(correct("#### 17", 18));
  EXPECT_FALSE(correct("I could not solve it.", 18));
  EXPECT_FALSE(correct("", 18));
}

TEST(OracleMath, NearMissesAreWrong) {
  EXPECT_TRUE(correct("\\boxed{12}", 12));
  EXPECT_FALSE(correct("\\boxed{1.2}", 12));
  EXPECT_FALSE(correct("\\boxed{120}", 12));
  EXPECT_FALSE(correct("\\boxed{-12}", 12));
  EXPECT_FALSE(correct("\\boxed{12}", "1.2"));
  EXPECT_FALSE(correct("\\boxed{0.333333}", "1/3"));
  EXPECT_FALSE(correct("\\boxed{1,2}", 12));
  EXPECT_FALSE(correct("\\boxed{1000000001}", 1000000000));
}

TEST(OracleMath, NumericNormalisation) {
  EXPECT_TRUE(math_answers_equal("0.50", ".5"));
  EXPECT_TRUE(math_answers_equal("1/2", "0.5"));
  EXPECT_TRUE(math_answers_equal("\\frac{1}{2}", "0.5"));
  EXPECT_TRUE(math_answers_equal("\\dfrac12", "1/2"));
  EXPECT_TRUE(math_answers_equal("\\tfrac{2}{4}", "\\frac{1}{2}"));
  EXPECT_TRUE(math_answers_equal("-\\frac{3}{4}", "-0.75"));
  EXPECT_TRUE(math_answers_equal("\\frac{-3}{4}", "-.75"));
  EXPECT_TRUE(math_answers_equal("1,234,567", "1234567"));
  EXPECT_TRUE(math_answers_equal("1{,}234", "1234"));
  EXPECT_TRUE(math_answers_equal("\\$42", "42"));
  EXPECT_TRUE(math_answers_equal("50\\%", "50"));
  EXPECT_TRUE(math_answers_equal("50%", "50.0"));
  EXPECT_FALSE(math_answers_equal("50%", "0.5"));
  EXPECT_TRUE(math_answers_equal("+7", "7"));
  EXPECT_TRUE(math_answers_equal("007", "7"));
  EXPECT_TRUE(math_answers_equal("7.", "7"));
  EXPECT_TRUE(math_answers_equal("12.0", "12"));
  EXPECT_TRUE(math_answers_equal("\\left( 5 \\right)", "5"));
  EXPECT_TRUE(math_answers_equal("5\\text{ cm}", "5"));
  EXPECT_TRUE(math_answers_equal("90^\\circ", "90"));
  EXPECT_TRUE(math_answers_equal("x = 3", "3"));
  EXPECT_TRUE(math_answers_equal("$ 3.14 $", "3.14"));
  EXPECT_TRUE(math_answers_equal("0.1", "1e-1"));
  EXPECT_TRUE(math_answers_equal("0.30000000000000004", "0.3"));
  EXPECT_FALSE(math_answers_equal("1/0", "0"));
  MathNumber n;
  EXPECT_FALSE(parse_math_number("1,23", &n));
  EXPECT_FALSE(parse_math_number("12,3456", &n));
  EXPECT_FALSE(parse_math_number("x+1", &n));
  EXPECT_FALSE(parse_math_number("", &n));
  ASSERT_TRUE(parse_math_number("-1,000.5", &n));
  EXPECT_EQ(n.value, -1000.5L);
}

TEST(OracleMath, SymbolicNormalisation) {
  EXPECT_TRUE(math_answers_equal("x + 1", "x+1"));
  EXPECT_TRUE(math_answers_equal("\\sqrt2", "\\sqrt{2}"));
  EXPECT_TRUE(math_answers_equal("2\\sqrt{3}", "2 \\sqrt 3"));
  EXPECT_TRUE(math_answers_equal("\\frac{\\pi}{2}", "\\dfrac\\pi2"));
  EXPECT_TRUE(math_answers_equal("x^2+1", "x^{2} + 1"));
  EXPECT_TRUE(math_answers_equal("\\left[ 1, 2 \\right)", "[1,2)"));
  EXPECT_TRUE(math_answers_equal("(1,\\! 2)", "(1, 2)"));
  EXPECT_TRUE(math_answers_equal("$x-3$.", "x-3"));
  EXPECT_TRUE(math_answers_equal("\\text{(B)}", "(B)"));
  EXPECT_TRUE(math_answers_equal("\\leftarrow", "\\leftarrow"));
  EXPECT_FALSE(math_answers_equal("X+1", "x+1"));
  EXPECT_FALSE(math_answers_equal("2x+2", "2(x+1)"));
  EXPECT_FALSE(math_answers_equal("\\sqrt{3}", "\\sqrt{2}"));
  EXPECT_FALSE(math_answers_equal("", ""));
}

TEST(OracleMath, GradesMathStyleCompletions) {
  EXPECT_TRUE(correct("Thus $x = \\boxed{\\dfrac{1}{2}}$.", 0.5));
  EXPECT_TRUE(correct("The area is $\\boxed{2\\sqrt{3}}$", "2\\sqrt3"));
  EXPECT_TRUE(correct("So $\\boxed{-4}$.", -4));
  EXPECT_TRUE(correct("\\boxed{\\text{5 apples}}", "5 apples"));
  EXPECT_TRUE(correct("\\boxed{(3, -1)}", "(3,-1)"));
  EXPECT_FALSE(correct("\\boxed{(3, 1)}", "(3,-1)"));
  EXPECT_TRUE(correct("\\boxed{3} is wrong, I mean \\boxed{4}", 4));
  EXPECT_TRUE(correct("The temperature drops to\n#### -5", -5));
  EXPECT_FALSE(correct("The temperature drops to\n#### 5", -5));
  EXPECT_TRUE(correct("so the answer is -0.5", "-1/2"));
  EXPECT_TRUE(correct("Total: $\\boxed{\\$1,234}$", 1234));
  EXPECT_TRUE(correct("$\\boxed{18\\%}$", 18));
  EXPECT_TRUE(correct("The final answer is $\\boxed{\\frac{7}{2}}$.", 3.5));
  EXPECT_FALSE(correct("The final answer is $\\boxed{\\frac{2}{7}}$.", 3.5));
}

TEST(OracleMath, FieldErrorsNameTheItemAndField) {
  MathOracle oracle;
  try {
    oracle.check_fields({{"question", "?"}}, "data.jsonl:3");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("data.jsonl:3: missing oracle field \"answer\""));
  }
  try {
    oracle.check_fields({{"answer", true}}, "data.jsonl:4");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("data.jsonl:4: oracle field \"answer\": expected "
                                               "a number or a string, found true"));
  }
  EXPECT_THROW(oracle.grade("\\boxed{1}", nlohmann::json::object()), InputError);
  EXPECT_NO_THROW(oracle.check_fields({{"answer", "x+1"}}, "d"));
}

}  // namespace
}  // namespace align
