#include "data/added_tokens.h"

#include <algorithm>

#include "data/regex.h"
#include "data/utf8.h"

namespace align {

namespace {

// The code point that ends at text[end) (text valid UTF-8, end > 0); sets *begin to its start.
char32_t code_point_before(std::string_view text, size_t end, size_t* begin) {
  size_t pos = end - 1;
  while (pos > 0 && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80)
    --pos;
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

// True when [begin, end) overlaps a span of `spans` (sorted, not overlapping).
bool overlaps(const std::vector<TextSpan>& spans, size_t begin, size_t end) {
  auto it = std::upper_bound(spans.begin(), spans.end(), begin,
                             [](size_t pos, const TextSpan& s) { return pos < s.end; });
  return it != spans.end() && it->begin < end;
}

bool in_ranges(char32_t c, const Range* ranges, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    if (c >= ranges[i].first && c <= ranges[i].last) return true;
  }
  return false;
}

}  // namespace

bool is_unicode_whitespace(char32_t c) {
  static constexpr Range kWhiteSpace[] = {
      {0x09, 0x0D},     {0x20, 0x20},     {0x85, 0x85},     {0xA0, 0xA0},     {0x1680, 0x1680},
      {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F}, {0x3000, 0x3000}};
  return in_ranges(c, kWhiteSpace, sizeof(kWhiteSpace) / sizeof(kWhiteSpace[0]));
}

bool is_word_char(char32_t c) {
  if (c < 0x80) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  }
  // Rust regex's Unicode \w: Alphabetic, marks, decimal numbers, connector punctuation,
  // Join_Control. PCRE2 10.42 knows Unicode 14; the listed ranges add the word characters of
  // Unicode 15-16 that HF (tokenizers 0.23.3) has, from `golden_tokenizer.py --unicode-delta`
  // (some, like circled letters, are already Alphabetic in PCRE2 and listed only for
  // completeness). The Unicode sweep test checks every code point.
  static const Regex word(
      R"([\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\x{200C}\x{200D})"
      R"(\x{897}\x{CF3}\x{ECE}\x{1C89}-\x{1C8A}\x{24B6}-\x{24E9}\x{A7CB}-\x{A7CD}\x{A7DA}-\x{A7DC})"
      R"(\x{105C0}-\x{105F3}\x{10D40}-\x{10D65}\x{10D69}-\x{10D6D}\x{10D6F}-\x{10D85})"
      R"(\x{10EC2}-\x{10EC4}\x{10EFC}-\x{10EFF}\x{1123F}-\x{11241}\x{11380}-\x{11389}\x{1138B})"
      R"(\x{1138E}\x{11390}-\x{113B5}\x{113B7}-\x{113C0}\x{113C2}\x{113C5}\x{113C7}-\x{113CA})"
      R"(\x{113CC}-\x{113D3}\x{113E1}-\x{113E2}\x{116D0}-\x{116E3}\x{11BC0}-\x{11BE0})"
      R"(\x{11BF0}-\x{11BF9}\x{11F00}-\x{11F10}\x{11F12}-\x{11F3A}\x{11F3E}-\x{11F42})"
      R"(\x{11F50}-\x{11F5A}\x{1342F}\x{13440}-\x{13455}\x{13460}-\x{143FA}\x{16100}-\x{16139})"
      R"(\x{16D40}-\x{16D6C}\x{16D70}-\x{16D79}\x{18CFF}\x{1B132}\x{1B155}\x{1CCF0}-\x{1CCF9})"
      R"(\x{1DF25}-\x{1DF2A}\x{1E030}-\x{1E06D}\x{1E08F}\x{1E4D0}-\x{1E4F9}\x{1E5D0}-\x{1E5FA})"
      R"(\x{1F130}-\x{1F149}\x{1F150}-\x{1F169}\x{1F170}-\x{1F189}\x{2B739}\x{2EBF0}-\x{2EE5D})"
      R"(\x{31350}-\x{323AF}])",
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

void AddedVocabulary::split_pass(const Trie& trie, std::string_view text, size_t offset,
                                 bool allow_special, const std::vector<TextSpan>* plain,
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
    if (token.special &&
        (!allow_special || (plain && overlaps(*plain, offset + start, offset + stop)))) {
      continue;
    }
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
                            std::vector<TextSegment>& out,
                            const std::vector<TextSpan>* plain) const {
  if (text.empty()) return;
  if (tokens_.empty()) {
    out.push_back({text, -1});
    return;
  }
  if (!any_normalized_) {
    split_pass(raw_, text, 0, allow_special, plain, out);
    return;
  }
  thread_local std::vector<TextSegment> first;
  first.clear();
  split_pass(raw_, text, 0, allow_special, plain, first);
  for (const TextSegment& segment : first) {
    if (segment.id >= 0) {
      out.push_back(segment);
    } else {
      split_pass(normalized_, segment.text, static_cast<size_t>(segment.text.data() - text.data()),
                 allow_special, plain, out);
    }
  }
}

}  // namespace align
