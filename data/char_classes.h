// The character classes the cl100k regex distinguishes, per code point, as Hugging Face's regex
// engine sees them: letter (\p{L}), number (\p{N}), whitespace (\s, Unicode White_Space), CR/LF,
// or other. Computed from the same Oniguruma-compatible PCRE2 classes the regex path uses
// (onig_compat.h), lazily per block of 256 code points; ASCII is a static table.
#pragma once

#include <cstdint>

namespace align {

enum class CharClass : uint8_t { kOther, kLetter, kNumber, kSpace, kNewline };

// Thread-safe; the first call in a block of 256 code points classifies the whole block.
CharClass char_class(char32_t cp);

}  // namespace align
