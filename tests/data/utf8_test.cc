// UTF-8 repair must replace each maximal invalid subpart with one U+FFFD, like Python's
// bytes.decode("utf-8", errors="replace"). The expected strings below were computed once with
// Python 3 (b"...".decode("utf-8", "replace")) and hard-coded.
#include "data/utf8.h"

#include <gtest/gtest.h>

namespace align {
namespace {

TEST(Utf8, RepairMatchesPythonReplace) {
  const std::string r = "\xEF\xBF\xBD";  // U+FFFD
  const struct {
    std::string in, out;
  } cases[] = {
      {"\xC3", r},                                  // truncated 2-byte
      {"\xE2\x82", r},                              // truncated 3-byte: one subpart
      {"\xF0\x9F\x98", r},                          // truncated 4-byte: one subpart
      {"\xC0\xAF", r + r},                          // overlong lead C0: each byte alone
      {"\xE0\x80\xAF", r + r + r},                  // overlong 3-byte
      {"\xF0\x80\x80\x80", r + r + r + r},          // overlong 4-byte
      {"\xC1\xBF", r + r},                          // overlong lead C1
      {"\xED\xA0\x80", r + r + r},                  // surrogate U+D800
      {"\xED\xBF\xBF", r + r + r},                  // surrogate U+DFFF
      {"\xF4\x90\x80\x80", r + r + r + r},          // above U+10FFFF
      {"\xF8\x88\x80\x80\x80", r + r + r + r + r},  // 5-byte form
      {"\x80\x80\x80", r + r + r},                  // lone continuation bytes
      {"\xBF", r},
      {"a\xC3(b", "a" + r + "(b"},  // the bad byte is not swallowed
      {"\xE2\x82 x", r + " x"},
      {"\xF0\x9F\x91\x8D\xF0\x9F", "\xF0\x9F\x91\x8D" + r},
      {"\xFE\xFE\xFF\xFF", r + r + r + r},
      {"\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41", r + r + r + r + "A"},
      {"plain ascii", "plain ascii"},
      {"", ""},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(repair_utf8(c.in), c.out) << "input bytes: " << c.in;
    EXPECT_EQ(is_valid_utf8(c.in), c.in == c.out) << c.in;
    EXPECT_TRUE(is_valid_utf8(repair_utf8(c.in)));
  }
}

TEST(Utf8, ValidTextIsUnchanged) {
  const std::string text =
      "h\xC3\xA9llo \xE4\xBD\xA0\xE5\xA5\xBD \xF0\x9F\x91\x8D \xF4\x8F\xBF\xBF";
  EXPECT_TRUE(is_valid_utf8(text));
  EXPECT_EQ(repair_utf8(text), text);
  // Long ASCII runs take the 8-byte fast path; an error after them must still be found.
  EXPECT_FALSE(is_valid_utf8(std::string(37, 'a') + "\xFF"));
}

TEST(Utf8, EncodeDecodeBoundaries) {
  for (char32_t cp : {0x0u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xD7FFu, 0xE000u, 0xFFFDu, 0xFFFFu,
                      0x10000u, 0x10FFFFu}) {
    std::string s;
    append_utf8(s, cp);
    EXPECT_TRUE(is_valid_utf8(s)) << std::hex << uint32_t(cp);
    EXPECT_EQ(s.size(), utf8_char_length(s[0]));
    size_t pos = 0;
    EXPECT_EQ(next_code_point(s, pos), cp);
    EXPECT_EQ(pos, s.size());
  }
  std::string e_acute;
  append_utf8(e_acute, 0xE9);
  EXPECT_EQ(e_acute, "\xC3\xA9");
}

}  // namespace
}  // namespace align
