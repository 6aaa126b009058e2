// Pre-tokenization: cutting text into the pieces ("pre-tokens") that BPE encodes one by one, as
// tokenizer.json's "pre_tokenizer" describes. Supported, which covers Phi-4 and GPT-2 files:
//   - Split {pattern: {Regex|String}, behavior: "Isolated", invert}: every match and every gap
//     becomes a piece. `invert` swaps which pieces count as matches, which "Isolated" ignores.
//   - ByteLevel {add_prefix_space, use_regex}: last step. Prepends a space to each piece that does
//     not start with one (when add_prefix_space), then splits with GPT-2's regex (when use_regex).
//     Mapping bytes to the byte-level alphabet is left to the BPE model, which works on raw bytes.
//   - Sequence of the above (nested sequences are flattened): Splits, then one ByteLevel.
// Anything else throws InputError: tokenizing with a step we do not run would be silently wrong.
//
// Regexes run on PCRE2 (UTF + UCP, classes adapted to Oniguruma by onig_compat.h); Hugging Face
// runs them on Oniguruma. A Split on exactly the cl100k pattern runs a hand-written matcher
// (cl100k_splitter.h) instead, unless fast paths are turned off. The golden Unicode sweep
// (tests/golden/tokenizer/unicode_classes.json) checks both paths against HF on every code point.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "data/json_fields.h"
#include "data/regex.h"

namespace align {

// Phi-4's (OpenAI cl100k_base) pre-tokenizer regex.
inline constexpr const char* kCl100kPattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*)"
    R"(|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-2's regex, used by ByteLevel with use_regex.
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// One piece: its bytes are (prefix_space ? " " : "") + text, with `text` a view into the input.
struct PreToken {
  std::string_view text;
  bool prefix_space = false;
};

class PreTokenizer {
 public:
  // Parses tokenizer.json's "pre_tokenizer" value found at `at`. fast_paths=false runs every
  // Split with PCRE2 (the reference the fast path is tested against).
  static PreTokenizer from_json(const nlohmann::json& value, const JsonPath& at,
                                bool fast_paths = true);
  // Phi-4's: Split(cl100k, Isolated) then ByteLevel(add_prefix_space=false, use_regex=false).
  static PreTokenizer phi4(bool fast_paths = true);
  // The same as tokenizer.json's "pre_tokenizer" value.
  static nlohmann::json phi4_json();

  // What the steps are, for writers of other formats (data/gguf_vocab.h).
  struct Steps {
    std::vector<std::pair<std::string, bool>> splits;  // Split patterns in order: (text, literal)
    bool add_prefix_space = false;                     // ByteLevel
    bool byte_level_regex = false;                     // ByteLevel's use_regex (GPT-2's regex)
  };
  Steps steps() const;

  // Calls `sink` with each piece of `text` (valid UTF-8), in order; views point into `text`.
  // Streams: memory does not grow with the length of `text`.
  void for_each(std::string_view text, const std::function<void(const PreToken&)>& sink) const;
  // Appends the pieces to `out`.
  void split(std::string_view text, std::vector<PreToken>& out) const;

 private:
  PreTokenizer() = default;
  void run(size_t step, std::string_view piece,
           const std::function<void(const PreToken&)>& sink) const;
  void byte_level(std::string_view piece, const std::function<void(const PreToken&)>& sink) const;

  struct SplitStep {
    Regex regex;
    bool literal = false;  // a {"String": ...} pattern
    bool cl100k = false;   // run for_each_cl100k_piece instead of the regex
  };
  static SplitStep make_split(Regex regex, bool literal, bool fast_paths);

  std::vector<SplitStep> splits_;          // Split steps, in order
  bool add_prefix_space_ = false;          // ByteLevel step
  std::optional<Regex> byte_level_regex_;  // ByteLevel with use_regex
};

}  // namespace align
