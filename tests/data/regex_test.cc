// PCRE2 wrapper: HF's "Isolated" split (expected pieces recorded from tokenizers 0.23.3's
// pre_tokenizers.Split(Regex(p), "isolated").pre_tokenize_str and hard-coded here), and the
// Oniguruma character classes.
#include "data/regex.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "data/onig_compat.h"
#include "data/pretokenizer.h"

namespace align {
namespace {

std::vector<std::string> pieces(const std::string& pattern, const std::string& text) {
  const Regex regex(pattern, Regex::Syntax::kRegex, "test");
  std::vector<std::string_view> views;
  split_isolated(regex, text, views);
  return {views.begin(), views.end()};
}

using P = std::vector<std::string>;

TEST(Regex, IsolatedKeepsMatchesAndGaps) {
  EXPECT_EQ(pieces(",", "a,b,,c"), (P{"a", ",", "b", ",", ",", "c"}));
  EXPECT_EQ(pieces(",", ",x,"), (P{",", "x", ","}));
  EXPECT_EQ(pieces(",", ""), P{});
  EXPECT_EQ(pieces("z", "abc"), P{"abc"});
}

TEST(Regex, EmptyMatchesSplitLikeOniguruma) {
  EXPECT_EQ(pieces("x*", "ab"), (P{"a", "b"}));
  EXPECT_EQ(pieces("x*", "axxb"), (P{"a", "xx", "b"}));
  EXPECT_EQ(pieces("x*", "xab"), (P{"x", "a", "b"}));
  EXPECT_EQ(pieces("b*", "bb"), (P{"bb"}));
  EXPECT_EQ(pieces("b*", "axxb"), (P{"a", "x", "x", "b"}));
  EXPECT_EQ(pieces(",?", "a,,b"), (P{"a", ",", ",", "b"}));
  EXPECT_EQ(pieces("x*", "\xC3\xA9\xC3\xA9"), (P{"\xC3\xA9", "\xC3\xA9"}));  // by character
}

TEST(Regex, LiteralSyntax) {
  const Regex regex("a.b", Regex::Syntax::kLiteral, "test");
  std::vector<std::string_view> views;
  split_isolated(regex, "xa.byaxb", views);
  EXPECT_EQ(std::vector<std::string>(views.begin(), views.end()), (P{"x", "a.b", "yaxb"}));
}

TEST(Regex, CompileErrorNamesWhere) {
  try {
    Regex("(\\p{L}", Regex::Syntax::kRegex, "file.json: pattern");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("file.json: pattern: cannot compile"), std::string::npos)
        << e.what();
  }
}

bool matches(const std::string& pattern, const std::string& text) {
  size_t b = 0, e = 0;
  return Regex(pattern, Regex::Syntax::kRegex, "test").find(text, 0, &b, &e);
}

TEST(Regex, OnigurumaClasses) {
  const std::string mongolian_vowel_separator = "\xE1\xA0\x8E";  // U+180E, not White_Space
  const std::string cjk_ext_h = "\xF0\xB1\x8D\x90";               // U+31350, Unicode 15 letter
  const std::string kawi_digit = "\xF0\x91\xBD\x90";              // U+11F50, Unicode 15 digit
  EXPECT_FALSE(matches("\\s", mongolian_vowel_separator));
  EXPECT_TRUE(matches("\\S", mongolian_vowel_separator));
  EXPECT_TRUE(matches("[^\\s]", mongolian_vowel_separator));
  EXPECT_TRUE(matches("\\s", "\xE3\x80\x80"));  // U+3000
  EXPECT_TRUE(matches("\\s", "\xC2\x85"));      // U+0085
  EXPECT_TRUE(matches("^\\p{L}$", cjk_ext_h));
  EXPECT_FALSE(matches("[^\\p{L}]", cjk_ext_h));
  EXPECT_TRUE(matches("^\\p{N}$", kawi_digit));
  EXPECT_TRUE(matches("^\\p{L}$", "\xE4\xBD\xA0"));  // 你, known to every version
  // Rewriting leaves literal text alone.
  EXPECT_EQ(rewrite_for_oniguruma("\\Q\\s\\E[]\\s][[:alpha:]\\s]"),
            std::string("\\Q\\s\\E[]") +
                rewrite_for_oniguruma("\\s").substr(1, rewrite_for_oniguruma("\\s").size() - 2) +
                "][[:alpha:]" +
                rewrite_for_oniguruma("\\s").substr(1, rewrite_for_oniguruma("\\s").size() - 2) + "]");
}

TEST(Regex, Cl100kPieces) {
  // Hand-derived from the cl100k regex.
  const PreTokenizer pre = PreTokenizer::phi4();
  std::vector<PreToken> out;
  pre.split("Hello world's 12345 !!\n\n  x", out);
  std::vector<std::string> got;
  for (const PreToken& p : out) got.emplace_back(p.text);
  EXPECT_EQ(got, (P{"Hello", " world", "'s", " ", "123", "45", " !!\n\n", " ", " x"}));
}

}  // namespace
}  // namespace align
