// PCRE2 wrapper: HF's "Isolated" split (expected pieces recorded from tokenizers 0.23.3's
// pre_tokenizers.Split(Regex(p), "isolated").pre_tokenize_str and hard-coded here), and the
// Oniguruma character classes.
#include "data/regex.h"

#include <gtest/gtest.h>

#include <random>

#include "common/error.h"
#include "data/cl100k_splitter.h"
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
  const std::string cjk_ext_h = "\xF0\xB1\x8D\x90";              // U+31350, Unicode 15 letter
  const std::string kawi_digit = "\xF0\x91\xBD\x90";             // U+11F50, Unicode 15 digit
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
                rewrite_for_oniguruma("\\s").substr(1, rewrite_for_oniguruma("\\s").size() - 2) +
                "]");
}

// The hand-written cl100k matcher against PCRE2 running the pattern, on random strings drawn from
// characters of every class the regex distinguishes.
TEST(Regex, Cl100kFastPathMatchesPcre2) {
  const Regex regex(kCl100kPattern, Regex::Syntax::kRegex, "cl100k");
  const std::vector<std::string> pool = {"a",
                                         "Z",
                                         "s",
                                         "S",
                                         "t",
                                         "r",
                                         "e",
                                         "v",
                                         "m",
                                         "l",
                                         "L",
                                         "d",
                                         "D",
                                         "x",
                                         "'",
                                         "'",
                                         "'",
                                         " ",
                                         " ",
                                         " ",
                                         "\t",
                                         "\r",
                                         "\n",
                                         "\n",
                                         "\x0B",
                                         "\f",
                                         "0",
                                         "7",
                                         "!",
                                         ".",
                                         ",",
                                         "-",
                                         "_",
                                         "(",
                                         "\xC2\xA0",          // U+00A0
                                         "\xE3\x80\x80",      // U+3000
                                         "\xC2\x85",          // U+0085
                                         "\xE1\xA0\x8E",      // U+180E
                                         "\xE2\x80\x8B",      // U+200B
                                         "\xC5\xBF",          // U+017F long s
                                         "\xC3\xA9",          // é
                                         "\xCC\x81",          // combining acute
                                         "\xE4\xBD\xA0",      // 你
                                         "\xD9\xA3",          // Arabic-Indic 3
                                         "\xC2\xB2",          // superscript 2
                                         "\xF0\x91\xBD\x90",  // U+11F50 Kawi digit (Unicode 15)
                                         "\xF0\xB1\x8D\x90",  // U+31350 CJK Ext H (Unicode 15)
                                         "\xF0\x9F\x91\x8D",  // 👍
                                         "\xE2\x80\x8D",      // ZWJ
                                         "\x01",
                                         "\x1C"};
  std::mt19937 rng(7);
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int length = 1 + static_cast<int>(rng() % 12);
    for (int i = 0; i < length; ++i)
      text += pool[rng() % pool.size()];
    std::vector<std::string_view> want;
    split_isolated(regex, text, want);
    std::vector<std::string_view> got;
    for_each_cl100k_piece(text, [&](std::string_view piece) { got.push_back(piece); });
    ASSERT_EQ(std::vector<std::string>(got.begin(), got.end()),
              std::vector<std::string>(want.begin(), want.end()))
        << "text " << nlohmann::json(text).dump();
  }
}

TEST(Regex, Cl100kPieces) {
  // Hand-derived from the cl100k regex, on both paths.
  for (bool fast : {true, false}) {
    const PreTokenizer pre = PreTokenizer::phi4(fast);
    std::vector<PreToken> out;
    pre.split("Hello world's 12345 !!\n\n  x\t\ty  \n z'LL'S", out);
    std::vector<std::string> got;
    for (const PreToken& p : out)
      got.emplace_back(p.text);
    EXPECT_EQ(got, (P{"Hello", " world", "'s", " ", "123", "45", " !!\n\n", " ", " x", "\t", "\ty",
                      "  \n", " z", "'LL", "'S"}))
        << "fast path " << fast;
  }
}

}  // namespace
}  // namespace align
