// GPT-2's byte-level alphabet, with values derived by hand from its definition: printable bytes
// ('!'..'~', 0xA1..0xAC, 0xAE..0xFF) map to themselves, the other 68 bytes in order to U+0100...
// Bytes 0x00..0x20 are the first 33 (U+0100..U+0120), 0x7F..0xA0 the next 34 (U+0121..U+0142),
// and 0xAD the last (U+0143).
#include "data/byte_level.h"

#include <gtest/gtest.h>

#include <set>

namespace align {
namespace {

TEST(ByteLevel, KnownCharacters) {
  EXPECT_EQ(byte_to_char(' '), char32_t(0x120));   // 'Ġ'
  EXPECT_EQ(byte_to_char('\n'), char32_t(0x10A));  // 'Ċ'
  EXPECT_EQ(byte_to_char('\t'), char32_t(0x109));  // 'ĉ'
  EXPECT_EQ(byte_to_char(0x00), char32_t(0x100));  // 'Ā'
  EXPECT_EQ(byte_to_char(0x7F), char32_t(0x121));
  EXPECT_EQ(byte_to_char(0xA0), char32_t(0x142));
  EXPECT_EQ(byte_to_char(0xAD), char32_t(0x143));
  EXPECT_EQ(byte_to_char('A'), char32_t('A'));
  EXPECT_EQ(byte_to_char('!'), char32_t('!'));
  EXPECT_EQ(byte_to_char('~'), char32_t('~'));
  EXPECT_EQ(byte_to_char(0xA1), char32_t(0xA1));
  EXPECT_EQ(byte_to_char(0xFF), char32_t(0xFF));
}

TEST(ByteLevel, IsABijection) {
  std::set<char32_t> seen;
  for (int b = 0; b < 256; ++b) {
    const char32_t c = byte_to_char(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(c).second) << b;
    ASSERT_TRUE(char_to_byte(c).has_value()) << b;
    EXPECT_EQ(*char_to_byte(c), b);
  }
  EXPECT_FALSE(char_to_byte(' ').has_value());
  EXPECT_FALSE(char_to_byte(0x144).has_value());
  EXPECT_FALSE(char_to_byte(0x4F60).has_value());
}

TEST(ByteLevel, Strings) {
  EXPECT_EQ(bytes_to_byte_level(" hello\n"), "\xC4\xA0hello\xC4\x8A");  // "Ġhello" + "Ċ"
  EXPECT_EQ(bytes_to_byte_level("\xC3\xA9"), "\xC3\x83\xC2\xA9");       // é -> "Ã©"
  EXPECT_EQ(byte_level_to_bytes("\xC4\xA0hello"), std::optional<std::string>(" hello"));
  EXPECT_EQ(byte_level_to_bytes("<|im_end|>"), std::optional<std::string>("<|im_end|>"));
  EXPECT_FALSE(byte_level_to_bytes("hello world").has_value());  // ' ' is not in the alphabet
  std::string all;
  for (int b = 0; b < 256; ++b)
    all.push_back(static_cast<char>(b));
  EXPECT_EQ(byte_level_to_bytes(bytes_to_byte_level(all)), std::optional<std::string>(all));
}

}  // namespace
}  // namespace align
