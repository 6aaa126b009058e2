#include "data/cl100k_splitter.h"

#include "data/char_classes.h"
#include "data/utf8.h"

namespace align {

namespace {

// A cursor over valid UTF-8 that knows the class of the character under it.
struct Cursor {
  std::string_view text;

  // Class and length of the character at `pos`; kOther with length 0 at the end.
  CharClass at(size_t pos, size_t* length) const {
    if (pos >= text.size()) {
      *length = 0;
      return CharClass::kOther;
    }
    const auto b = static_cast<unsigned char>(text[pos]);
    if (b < 0x80) {
      *length = 1;
      return ascii_class(b);
    }
    size_t next = pos;
    const char32_t cp = next_code_point(text, next);
    *length = next - pos;
    return char_class(cp);
  }

  static CharClass ascii_class(unsigned char b) {
    if ((b | 0x20) >= 'a' && (b | 0x20) <= 'z') return CharClass::kLetter;
    if (b >= '0' && b <= '9') return CharClass::kNumber;
    if (b == '\r' || b == '\n') return CharClass::kNewline;
    if (b == ' ' || (b >= '\t' && b <= '\f')) return CharClass::kSpace;
    return CharClass::kOther;
  }

  // End of the run of characters of class `c` (or `c2`) starting at `pos`.
  size_t run_end(size_t pos, CharClass c, CharClass c2, size_t max_chars = size_t(-1)) const {
    size_t length = 0;
    for (size_t n = 0; n < max_chars; ++n) {
      const CharClass k = at(pos, &length);
      if (length == 0 || (k != c && k != c2)) break;
      pos += length;
    }
    return pos;
  }
};

bool is_space(CharClass c) {
  return c == CharClass::kSpace || c == CharClass::kNewline;
}

// Length of an apostrophe contraction at `pos` ("'s", "'RE", ...), or 0.
size_t contraction(std::string_view text, size_t pos) {
  if (text[pos] != '\'' || pos + 1 >= text.size()) return 0;
  auto lower = [&](size_t i) -> char {
    if (i >= text.size()) return 0;
    const auto b = static_cast<unsigned char>(text[i]);
    return static_cast<char>(b >= 'A' && b <= 'Z' ? b + 32 : b);
  };
  const char a = lower(pos + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  // U+017F (long s, UTF-8 C5 BF) case-folds to 's'.
  if (static_cast<unsigned char>(text[pos + 1]) == 0xC5 && pos + 2 < text.size() &&
      static_cast<unsigned char>(text[pos + 2]) == 0xBF) {
    return 3;
  }
  const char b = lower(pos + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Length of the match starting at `pos` (always > 0 before the end).
size_t match_at(const Cursor& cur, size_t pos) {
  const std::string_view text = cur.text;
  if (size_t n = contraction(text, pos)) return n;
  size_t len0 = 0, len1 = 0;
  const CharClass c0 = cur.at(pos, &len0);
  const CharClass c1 = cur.at(pos + len0, &len1);
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (c0 == CharClass::kLetter) {
    return cur.run_end(pos, CharClass::kLetter, CharClass::kLetter) - pos;
  }
  if (c0 != CharClass::kNewline && c0 != CharClass::kNumber && c1 == CharClass::kLetter) {
    return cur.run_end(pos + len0, CharClass::kLetter, CharClass::kLetter) - pos;
  }
  // \p{N}{1,3}
  if (c0 == CharClass::kNumber) {
    return cur.run_end(pos, CharClass::kNumber, CharClass::kNumber, 3) - pos;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t start = pos;
  if (text[pos] == ' ' && c1 == CharClass::kOther && len1 > 0) start = pos + 1;
  if (start != pos || c0 == CharClass::kOther) {
    const size_t others = cur.run_end(start, CharClass::kOther, CharClass::kOther);
    return cur.run_end(others, CharClass::kNewline, CharClass::kNewline) - pos;
  }
  // Whitespace: c0 is kSpace or kNewline. Find the maximal run and its last CR/LF.
  size_t end = pos, last_newline_end = 0, last_start = pos;
  for (;;) {
    size_t length = 0;
    const CharClass k = cur.at(end, &length);
    if (length == 0 || !is_space(k)) break;
    last_start = end;
    end += length;
    if (k == CharClass::kNewline) last_newline_end = end;
  }
  if (last_newline_end) return last_newline_end - pos;  // \s*[\r\n]+
  if (end == text.size()) return end - pos;             // \s+(?!\S) at the end
  if (last_start > pos) return last_start - pos;        // \s+(?!\S): all but the last
  return end - pos;                                     // \s+: one character
}

}  // namespace

void for_each_cl100k_piece(std::string_view text, const std::function<void(std::string_view)>& fn) {
  const Cursor cur{text};
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t n = match_at(cur, pos);
    fn(text.substr(pos, n));
    pos += n;
  }
}

}  // namespace align
