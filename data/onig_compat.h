// Making PCRE2 classify characters the way Hugging Face's regex engine (Oniguruma, in
// `tokenizers` 0.23.3) does, so pre-tokenization agrees on every code point.
//
// Two differences, both found by the Unicode sweep (tests/golden/tokenizer/unicode_classes.json):
//   - \s: Oniguruma matches Unicode White_Space; PCRE2 with UCP also matches U+180E (Mongolian
//     vowel separator, a format character since Unicode 6.3).
//   - \p{L}, \p{N}: Oniguruma knows Unicode 16; PCRE2 10.42 (Debian 12) knows Unicode 14, so
//     9,272 letters and 120 digits added in Unicode 15.0-16.0 (CJK Extensions H and I, Kawi,
//     Nag Mundari, Todhri, Garay, ...) would not count as letters or numbers.
// rewrite_for_oniguruma() therefore replaces \s with an explicit White_Space class, \S with its
// complement, and \p{L} / \p{N} with classes that add the missing ranges. The ranges come from
// `tools/golden_tokenizer.py --unicode-delta`. With a PCRE2 that already knows Unicode 16 the
// additions are harmless duplicates.
// Only \s, \S, \p{L}, \p{N} are adapted (what cl100k and GPT-2 patterns use); \S inside a
// character class is left to PCRE2, as are other properties.
#pragma once

#include <string>

namespace align {

std::string rewrite_for_oniguruma(const std::string& pattern);

}  // namespace align
