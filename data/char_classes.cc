#include "data/char_classes.h"

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "data/regex.h"
#include "data/utf8.h"

namespace align {

namespace {

constexpr size_t kBlocks = 0x110000 / 256;

// Classifies the 256 code points of block `index` with a few PCRE2 scans over all of them: each
// class regex matches maximal runs, so a block of letters costs one match, not 256.
void classify_block(size_t index, CharClass* out) {
  static const Regex letters("\\p{L}+", Regex::Syntax::kRegex, "letter class");
  static const Regex numbers("\\p{N}+", Regex::Syntax::kRegex, "number class");
  static const Regex spaces("\\s+", Regex::Syntax::kRegex, "space class");
  std::string text;
  std::array<size_t, 257> offset{};  // byte offset of each code point in `text`
  for (size_t i = 0; i < 256; ++i) {
    offset[i] = text.size();
    out[i] = CharClass::kOther;
    const auto cp = char32_t(index * 256 + i);
    append_utf8(text, cp >= 0xD800 && cp <= 0xDFFF ? char32_t('#') : cp);  // surrogates: other
  }
  offset[256] = text.size();
  const std::pair<const Regex*, CharClass> passes[] = {
      {&letters, CharClass::kLetter}, {&numbers, CharClass::kNumber}, {&spaces, CharClass::kSpace}};
  for (const auto& [regex, cls] : passes) {
    size_t pos = 0, begin = 0, end = 0;
    size_t i = 0;  // code point index, advanced monotonically with the matches
    while (pos < text.size() && regex->find(text, pos, &begin, &end)) {
      while (offset[i] < begin)
        ++i;
      for (; offset[i] < end; ++i) {
        if (out[i] == CharClass::kOther) out[i] = cls;
      }
      pos = end;
    }
  }
  if (index == 0) out['\r'] = out['\n'] = CharClass::kNewline;
}

struct Table {
  std::array<std::atomic<const CharClass*>, kBlocks> blocks{};

  const CharClass* block(size_t index) {
    const CharClass* ready = blocks[index].load(std::memory_order_acquire);
    if (ready) return ready;
    auto fresh = std::make_unique<CharClass[]>(256);
    classify_block(index, fresh.get());
    const CharClass* expected = nullptr;
    if (blocks[index].compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel)) {
      return fresh.release();  // kept for the life of the process
    }
    return expected;  // another thread published it first
  }
};

Table& table() {
  static Table t;
  return t;
}

}  // namespace

CharClass char_class(char32_t cp) {
  if (cp >= 0x110000) return CharClass::kOther;
  return table().block(cp >> 8)[cp & 0xFF];
}

}  // namespace align
