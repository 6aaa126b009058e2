// Added-token matching, with expectations derived by hand from HF's AddedVocabulary rules
// (several mirror the cases of HF's own added_vocabulary.rs tests).
#include "data/added_tokens.h"

#include <gtest/gtest.h>

namespace align {
namespace {

AddedToken token(TokenId id, std::string content) {
  AddedToken t;
  t.id = id;
  t.content = std::move(content);
  return t;
}

// Renders segments as "text" for plain runs and "[id:text]" for tokens.
std::string render(const AddedVocabulary& vocab, const std::string& text,
                   bool allow_special = true) {
  std::vector<TextSegment> segments;
  vocab.split(text, allow_special, segments);
  std::string out;
  for (const TextSegment& s : segments) {
    if (s.id < 0) {
      out += std::string(s.text);
    } else {
      out += "[" + std::to_string(s.id) + ":" + std::string(s.text) + "]";
    }
  }
  return out;
}

TEST(AddedTokens, PlainMatches) {
  AddedToken cls = token(1, "[CLS]"), sep = token(2, "[SEP]");
  cls.special = sep.special = true;
  const AddedVocabulary vocab({token(0, "name"), cls, sep});
  EXPECT_EQ(render(vocab, "[CLS] My name is Anthony [SEP]"),
            "[1:[CLS]] My [0:name] is Anthony [2:[SEP]]");
  EXPECT_EQ(render(vocab, ""), "");
  EXPECT_EQ(render(vocab, "nothing here"), "nothing here");
  EXPECT_EQ(render(vocab, "[SEP][SEP]"), "[2:[SEP]][2:[SEP]]");
}

TEST(AddedTokens, LeftmostThenLongest) {
  const AddedVocabulary vocab({token(0, "<a"), token(1, "<ab>"), token(2, "b>c")});
  EXPECT_EQ(render(vocab, "x<ab>c"), "x[1:<ab>]c");  // longest at the leftmost start
  EXPECT_EQ(render(vocab, "<ab"), "[0:<a]b");
  EXPECT_EQ(render(vocab, "<ab>c"), "[1:<ab>]c");  // "b>c" overlaps an earlier match
}

TEST(AddedTokens, SingleWord) {
  AddedToken mask = token(7, "<mask>");
  mask.single_word = true;
  const AddedVocabulary vocab({mask});
  EXPECT_EQ(render(vocab, "<mask> My name <mask> A<mask> <mask>ony <mask>"),
            "[7:<mask>] My name [7:<mask>] A<mask> <mask>ony [7:<mask>]");
  // Punctuation is not a word character; a combining mark (U+0330) and '_' are.
  EXPECT_EQ(render(vocab, "<mask>, <mask>- \xCC\xB0<mask>"),
            "[7:<mask>], [7:<mask>]- \xCC\xB0<mask>");
  EXPECT_EQ(render(vocab, "_<mask>"), "_<mask>");
  EXPECT_EQ(render(vocab, "\xC3\xA9<mask>"), "\xC3\xA9<mask>");  // é is alphabetic
}

TEST(AddedTokens, StripWhitespace) {
  AddedToken mask = token(7, "<mask>");
  mask.lstrip = mask.rstrip = mask.single_word = true;
  const AddedVocabulary vocab({mask});
  // Tab and U+2000 are Unicode White_Space; both sides are taken, never twice.
  EXPECT_EQ(render(vocab, "Hi <mask> there\t<mask>\t<mask>\xE2\x80\x80"),
            "Hi[7: <mask> ]there[7:\t<mask>\t][7:<mask>\xE2\x80\x80]");
  AddedToken left = token(1, "<L>"), right = token(2, "<R>");
  left.lstrip = true;
  right.rstrip = true;
  const AddedVocabulary sides({left, right});
  EXPECT_EQ(render(sides, "a  <L>  b"), "a[1:  <L>]  b");
  EXPECT_EQ(render(sides, "a  <R>  b"), "a  [2:<R>  ]b");
  // U+3000 and U+00A0 are White_Space; U+200B (zero width space) is not.
  EXPECT_EQ(render(sides, "x\xE3\x80\x80<L>"), "x[1:\xE3\x80\x80<L>]");
  EXPECT_EQ(render(sides, "<R>\xC2\xA0y"), "[2:<R>\xC2\xA0]y");
  EXPECT_EQ(render(sides, "x\xE2\x80\x8B<L>"), "x\xE2\x80\x8B[1:<L>]");
}

TEST(AddedTokens, SpecialsOffStillConsumeTheirMatch) {
  AddedToken special = token(1, "<ab>");
  special.special = true;
  const AddedVocabulary vocab({special, token(2, "<a"), token(3, "zz")});
  EXPECT_EQ(render(vocab, "x<ab>zz", true), "x[1:<ab>][3:zz]");
  // "<ab>" is skipped but consumed, so "<a" inside it does not match; non-special "zz" does.
  EXPECT_EQ(render(vocab, "x<ab>zz", false), "x<ab>[3:zz]");
  EXPECT_EQ(render(vocab, "<a", false), "[2:<a]");
}

TEST(AddedTokens, NormalizedTokensMatchInTheGapsAfterward) {
  AddedToken sep = token(1, "[SEP]");
  AddedToken tail = token(2, "EP] x");
  tail.normalized = true;
  AddedToken hw = token(3, "hello world");
  hw.normalized = true;
  const AddedVocabulary vocab({sep, tail, hw});
  EXPECT_EQ(render(vocab, "a[SEP] x"), "a[1:[SEP]] x");  // the first pass took "[SEP]"
  EXPECT_EQ(render(vocab, "EP] x"), "[2:EP] x]");
  EXPECT_EQ(render(vocab, "say hello world[SEP]"), "say [3:hello world][1:[SEP]]");
}

TEST(AddedTokens, WhitespaceAndWordClasses) {
  for (char32_t c : {0x09u, 0x0Au, 0x0Bu, 0x0Cu, 0x0Du, 0x20u, 0x85u, 0xA0u, 0x1680u, 0x2000u,
                     0x200Au, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u}) {
    EXPECT_TRUE(is_unicode_whitespace(c)) << std::hex << uint32_t(c);
  }
  for (char32_t c : {0x08u, 0x1Cu, 0x180Eu, 0x200Bu, 0xFEFFu, 0x61u}) {
    EXPECT_FALSE(is_unicode_whitespace(c)) << std::hex << uint32_t(c);
  }
  for (char32_t c : {0x61u, 0x5Au, 0x30u, 0x5Fu, 0xE9u, 0x4F60u, 0x301u, 0x660u, 0x200Du}) {
    EXPECT_TRUE(is_word_char(c)) << std::hex << uint32_t(c);
  }
  for (char32_t c : {0x20u, 0x2Du, 0x2Cu, 0x3Cu, 0x1F44Du, 0xB2u}) {
    EXPECT_FALSE(is_word_char(c)) << std::hex << uint32_t(c);
  }
}

}  // namespace
}  // namespace align
