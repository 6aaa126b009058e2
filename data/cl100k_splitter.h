// A hand-written matcher for the cl100k pre-tokenizer regex (kCl100kPattern in pretokenizer.h),
// about 3x faster than running the regex with PCRE2. It is used only when a Split step's pattern
// is exactly that string; tests compare it piece for piece with the PCRE2 path (regex_test.cc)
// and with Hugging Face on every code point (the Unicode sweep).
//
// The regex, and what a match starting at position i is (alternatives are tried in order):
//   (?i:'s|'t|'re|'ve|'m|'ll|'d)     apostrophe + contraction (s also matches U+017F, long s)
//   [^\r\n\p{L}\p{N}]?\p{L}+          letters, with one optional non-letter/number/CR/LF before
//   \p{N}{1,3}                        up to 3 numbers
//    ?[^\s\p{L}\p{N}]+[\r\n]*         optional space, "other" characters, then CR/LF characters
//   \s*[\r\n]+                        whitespace through its last CR/LF
//   \s+(?!\S)                         whitespace but the last character (all of it at the end)
//   \s+                               a single whitespace character
#pragma once

#include <functional>
#include <string_view>

namespace align {

// Calls fn(piece) for each match of the cl100k regex in `text` (valid UTF-8), in order. The
// regex matches at every position, so the pieces cover `text`.
void for_each_cl100k_piece(std::string_view text, const std::function<void(std::string_view)>& fn);

}  // namespace align
