// A PCRE2 regular expression compiled for UTF-8 text with Unicode properties (PCRE2_UTF |
// PCRE2_UCP, so \s, \w, \p{L} follow Unicode) and JIT-compiled when the platform allows.
// Regex syntax goes through rewrite_for_oniguruma() first (onig_compat.h), so \s, \p{L} and
// \p{N} mean what they mean in Hugging Face's regex engine.
// Matching is const and safe from several threads: match data live in thread-local storage.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/utf8.h"

struct pcre2_real_code_8;

namespace align {

class Regex {
 public:
  enum class Syntax { kRegex, kLiteral };

  // Throws InputError "<where>: cannot compile ..." with PCRE2's message and offset.
  Regex(const std::string& pattern, Syntax syntax, const std::string& where);

  // Finds the first match at or after `start` in `text` (valid UTF-8). Throws Error if PCRE2
  // gives up (e.g. a resource limit), never silently reports "no match".
  bool find(std::string_view text, size_t start, size_t* begin, size_t* end) const;

  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<pcre2_real_code_8> code_;
  bool jit_ = false;
};

// Hugging Face's Split with behavior "Isolated": every match and every gap between matches
// becomes its own piece, in order, so the pieces concatenate back to `text`. Matches are found
// left to right without overlap, like Oniguruma's find_iter in `tokenizers`: an empty match splits
// the surrounding gap and the search then moves on by one character; an empty match right at the
// end of the previous match is ignored. Calls fn(std::string_view piece) with views into `text`.
template <typename Fn>
void for_each_isolated(const Regex& regex, std::string_view text, Fn&& fn) {
  size_t prev = 0;  // end of the last piece emitted
  size_t search = 0;
  bool after_match = false;  // `search` sits right at the end of a non-empty match
  size_t begin = 0, end = 0;
  while (search <= text.size() && regex.find(text, search, &begin, &end)) {
    if (begin == end) {
      if (!(after_match && begin == search)) {
        if (prev < begin) fn(text.substr(prev, begin - prev));
        prev = begin;
      }
      if (begin >= text.size()) break;
      search = begin + utf8_char_length(text[begin]);
      after_match = false;
      continue;
    }
    if (prev < begin) fn(text.substr(prev, begin - prev));
    fn(text.substr(begin, end - begin));
    prev = search = end;
    after_match = true;
  }
  if (prev < text.size()) fn(text.substr(prev));
}

inline void split_isolated(const Regex& regex, std::string_view text,
                           std::vector<std::string_view>& out) {
  for_each_isolated(regex, text, [&](std::string_view piece) { out.push_back(piece); });
}

}  // namespace align
