#include "data/added_tokens.h"

#include "data/regex.h"
#include "data/utf8.h"

namespace align {

namespace {

// The code point that ends at text[end) (text valid UTF-8, end > 0); sets *begin to its start.
char32_t code_point_before(std::string_view text, size_t end, size_t* begin) {
  size_t pos = end - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) --pos;
  *begin = pos;
  return next_code_point(text, pos);
}

// Start of the run of whitespace that ends at `end`.
size_t whitespace_start_before(std::string_view text, size_t end) {
  while (end > 0) {
    size_t begin = 0;
    if (!is_unicode_whitespace(code_point_before(text, end, &begin))) break;
    end = begin;
  }
  return end;
}

// End of the run of whitespace that starts at `begin`.
size_t whitespace_end_after(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    size_t next = begin;
    if (!is_unicode_whitespace(next_code_point(text, next))) break;
    begin = next;
  }
  return begin;
}

struct Range {
  char32_t first, last;
};

bool in_ranges(char32_t c, const Range* ranges, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (c >= ranges[i].first && c <= ranges[i].last) return true;
  }
  return false;
}

}  // namespace

bool is_unicode_whitespace(char32_t c) {
  static constexpr Range kWhiteSpace[] = {{0x09, 0x0D}, {0x20, 0x20},     {0x85, 0x85},
                                          {0xA0, 0xA0}, {0x1680, 0x1680}, {0x2000, 0x200A},
                                          {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                                          {0x3000, 0x3000}};
  return in_ranges(c, kWhiteSpace, sizeof(kWhiteSpace) / sizeof(kWhiteSpace[0]));
}

bool is_word_char(char32_t c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  // Rust regex's Unicode \w: Alphabetic, marks, decimal numbers, connector punctuation,
  // Join_Control.
  static const Regex word(R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D}])",
                          Regex::Syntax::kRegex, "word character class");
  std::string utf8;
  append_utf8(utf8, c);
  size_t begin = 0, end = 0;
  return word.find(utf8, 0, &begin, &end);
}

void AddedVocabulary::Trie::add(const std::string& content, int32_t token) {
  int32_t node = 0;
  for (unsigned char b : content) {
    int32_t child = -1;
    for (const auto& [byte, target] : nodes[node].edges) {
      if (byte == b) child = target;
    }
    if (child < 0) {
      child = static_cast<int32_t>(nodes.size());
      nodes[node].edges.emplace_back(b, child);
      nodes.emplace_back();
    }
    node = child;
  }
  nodes[node].token = token;
  first_byte[static_cast<unsigned char>(content[0])] = true;
}

std::pair<size_t, int32_t> AddedVocabulary::Trie::longest_at(std::string_view text,
                                                             size_t pos) const {
  std::pair<size_t, int32_t> best{0, -1};
  int32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    int32_t child = -1;
    for (const auto& [byte, target] : nodes[node].edges) {
      if (byte == static_cast<unsigned char>(text[i])) {
        child = target;
        break;
      }
    }
    if (child < 0) break;
    node = child;
    if (nodes[node].token >= 0) best = {i + 1 - pos, nodes[node].token};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(std::vector<AddedToken> tokens) {
  for (AddedToken& token : tokens) {
    if (token.content.empty()) continue;
    const auto index = static_cast<int32_t>(tokens_.size());
    (token.normalized ? normalized_ : raw_).add(token.content, index);
    any_normalized_ |= token.normalized;
    tokens_.push_back(std::move(token));
  }
}

void AddedVocabulary::split_pass(const Trie& trie, std::string_view text, bool allow_special,
                                 std::vector<TextSegment>& out) const {
  size_t emitted = 0;  // end of the last segment pushed
  size_t pos = 0;
  while (pos < text.size()) {
    if (!trie.first_byte[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    const auto [length, index] = trie.longest_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    size_t start = pos;
    size_t stop = pos + length;
    pos = stop;  // the match is consumed even if rejected below
    const AddedToken& token = tokens_[index];
    if (token.special && !allow_special) continue;
    if (token.single_word) {
      size_t unused = 0;
      const bool word_before = start > 0 && is_word_char(code_point_before(text, start, &unused));
      size_t after = stop;
      const bool word_after = stop < text.size() && is_word_char(next_code_point(text, after));
      if (word_before || word_after) continue;
    }
    if (token.lstrip) start = std::max(whitespace_start_before(text, start), emitted);
    if (token.rstrip) stop = whitespace_end_after(text, stop);
    if (emitted < start) out.push_back({text.substr(emitted, start - emitted), -1});
    out.push_back({text.substr(start, stop - start), token.id});
    emitted = stop;
  }
  if (emitted < text.size()) out.push_back({text.substr(emitted), -1});
}

void AddedVocabulary::split(std::string_view text, bool allow_special,
                            std::vector<TextSegment>& out) const {
  if (text.empty()) return;
  if (tokens_.empty()) {
    out.push_back({text, -1});
    return;
  }
  if (!any_normalized_) {
    split_pass(raw_, text, allow_special, out);
    return;
  }
  thread_local std::vector<TextSegment> first;
  first.clear();
  split_pass(raw_, text, allow_special, first);
  for (const TextSegment& segment : first) {
    if (segment.id >= 0) {
      out.push_back(segment);
    } else {
      split_pass(normalized_, segment.text, allow_special, out);
    }
  }
}

}  // namespace align
