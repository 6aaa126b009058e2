// UTF-8 validation, decoding and lossy repair.
//
// Repair replaces each maximal invalid subpart of the input with one U+FFFD, the rule of Unicode
// (section 3.9, "U+FFFD Substitution of Maximal Subparts") that Python's
// bytes.decode("utf-8", errors="replace") and Rust's String::from_utf8_lossy follow. So "\xE2\x82"
// (a truncated 3-byte sequence) becomes one U+FFFD, while "\xC0\xAF" (overlong) becomes two.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace align {

inline constexpr char32_t kReplacementChar = 0xFFFD;

// Length of the well-formed sequence starting at text[pos] (1 to 4), or 0 when it is ill-formed;
// then *invalid_length is the length of its maximal invalid subpart (at least 1).
size_t utf8_sequence_length(std::string_view text, size_t pos, size_t* invalid_length);

bool is_valid_utf8(std::string_view text);

// Copy of `text` with every maximal invalid subpart replaced by U+FFFD.
std::string repair_utf8(std::string_view text);

// Decodes the code point at text[pos] and advances pos. `text` must be valid UTF-8.
char32_t next_code_point(std::string_view text, size_t& pos);

void append_utf8(std::string& out, char32_t cp);

// Length of the UTF-8 sequence that starts with `lead` (valid UTF-8 assumed).
inline size_t utf8_char_length(char lead) {
  const auto b = static_cast<unsigned char>(lead);
  return b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
}

}  // namespace align
