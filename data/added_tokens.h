// Added tokens (special or not) are matched literally in the text before pre-tokenization, as in
// Hugging Face's AddedVocabulary (tokenizer/added_vocabulary.rs):
//   - Two passes. Tokens with normalized=false are matched over the whole text; tokens with
//     normalized=true are then matched inside each remaining gap (no normalizer is supported, so
//     "normalized" only changes the pass).
//   - In each pass, matches are leftmost-longest and do not overlap. A match that is then
//     rejected (single_word, or a special token when specials are off) is still consumed: the
//     search resumes after it, so it can hide an overlapping token.
//   - single_word: the match counts only if no word character (Rust regex's Unicode \w:
//     alphabetic, marks, decimal digits, connector punctuation, ZWJ/ZWNJ; Unicode 16 as in HF)
//     touches it on either side.
//   - lstrip / rstrip: the token also takes the whitespace (Unicode White_Space) on its left /
//     right; lstrip never reaches back into an earlier match.
//   - allow_special=false: special tokens are never matched (HF's encode_special_tokens);
//     non-special added tokens still are.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "data/text_span.h"
#include "data/token_id.h"

namespace align {

struct AddedToken {
  TokenId id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;
};

// A run of the input: an added token (id >= 0) or text still to pre-tokenize (id == -1).
struct TextSegment {
  std::string_view text;
  TokenId id = -1;
};

// True for Unicode White_Space characters (what Rust's regex calls \s).
bool is_unicode_whitespace(char32_t c);
// True for what Rust's regex calls \w.
bool is_word_char(char32_t c);

class AddedVocabulary {
 public:
  AddedVocabulary() = default;
  // Tokens with empty content are ignored, as in HF.
  explicit AddedVocabulary(std::vector<AddedToken> tokens);

  // Appends the segments of `text` (valid UTF-8) to `out`, in order; they cover the whole text.
  // plain (sorted, not overlapping): spans of `text` where special tokens are not matched, as with
  // allow_special=false (a special token whose text overlaps one stays text).
  void split(std::string_view text, bool allow_special, std::vector<TextSegment>& out,
             const std::vector<TextSpan>* plain = nullptr) const;

  const std::vector<AddedToken>& tokens() const { return tokens_; }

 private:
  // A byte trie over the contents of one pass's tokens.
  struct Trie {
    struct Node {
      std::vector<std::pair<unsigned char, int32_t>> edges;
      int32_t token = -1;  // index into tokens_
    };
    std::vector<Node> nodes{Node{}};
    bool first_byte[256] = {};
    void add(const std::string& content, int32_t token);
    // Length and token of the longest match starting at text[pos], or {0, -1}.
    std::pair<size_t, int32_t> longest_at(std::string_view text, size_t pos) const;
  };

  // `text` starts at byte `offset` of the text whose spans `plain` holds.
  void split_pass(const Trie& trie, std::string_view text, size_t offset, bool allow_special,
                  const std::vector<TextSpan>* plain, std::vector<TextSegment>& out) const;

  std::vector<AddedToken> tokens_;
  Trie raw_;         // normalized == false
  Trie normalized_;  // normalized == true
  bool any_normalized_ = false;
};

}  // namespace align
