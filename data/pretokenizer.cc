#include "data/pretokenizer.h"

#include "data/cl100k_splitter.h"

namespace align {

namespace {

// Flattens nested Sequences into `steps`, remembering where each step sits for messages.
void flatten(const nlohmann::json& value, const JsonPath& at,
             std::vector<std::pair<const nlohmann::json*, JsonPath>>& steps) {
  const std::string type = json_string(json_member(value, "type", at), at / "type");
  if (type == "Sequence") {
    const nlohmann::json& list = json_member(value, "pretokenizers", at);
    if (!list.is_array()) {
      throw_json_error(at / "pretokenizers", "expected an array, got " + describe_json(list));
    }
    for (size_t i = 0; i < list.size(); ++i)
      flatten(list[i], (at / "pretokenizers")[i], steps);
    return;
  }
  steps.emplace_back(&value, at);
}

// A Split step's regex and whether its pattern is a literal {"String": ...}.
std::pair<Regex, bool> parse_split(const nlohmann::json& step, const JsonPath& at) {
  const std::string behavior = json_string(json_member(step, "behavior", at), at / "behavior");
  if (behavior != "Isolated") {
    throw_json_error(at / "behavior", "unsupported Split behavior \"" + behavior +
                                          "\" (only \"Isolated\" is implemented)");
  }
  json_bool(step, "invert", false, at);  // validated; no effect with "Isolated"
  const nlohmann::json& pattern = json_member(step, "pattern", at);
  const JsonPath pattern_at = at / "pattern";
  if (const nlohmann::json* regex = json_optional(pattern, "Regex")) {
    return {Regex(json_string(*regex, pattern_at / "Regex"), Regex::Syntax::kRegex,
                  (pattern_at / "Regex").str()),
            false};
  }
  if (const nlohmann::json* literal = json_optional(pattern, "String")) {
    return {Regex(json_string(*literal, pattern_at / "String"), Regex::Syntax::kLiteral,
                  (pattern_at / "String").str()),
            true};
  }
  throw_json_error(pattern_at,
                   "expected {\"Regex\": ...} or {\"String\": ...}, got " + describe_json(pattern));
}

}  // namespace

PreTokenizer::SplitStep PreTokenizer::make_split(Regex regex, bool literal, bool fast_paths) {
  const bool cl100k = fast_paths && !literal && regex.pattern() == kCl100kPattern;
  return SplitStep{std::move(regex), literal, cl100k};
}

PreTokenizer PreTokenizer::from_json(const nlohmann::json& value, const JsonPath& at,
                                     bool fast_paths) {
  if (value.is_null()) {
    throw_json_error(at, "is null; a byte-level BPE needs a ByteLevel pre-tokenizer");
  }
  std::vector<std::pair<const nlohmann::json*, JsonPath>> steps;
  flatten(value, at, steps);
  PreTokenizer pre;
  bool byte_level = false;
  for (const auto& [step, step_at] : steps) {
    const std::string type = json_string(json_member(*step, "type", step_at), step_at / "type");
    if (byte_level) {
      throw_json_error(step_at, "\"" + type +
                                    "\" after ByteLevel is not supported (ByteLevel "
                                    "must be the last pre-tokenizer)");
    }
    if (type == "Split") {
      auto [regex, literal] = parse_split(*step, step_at);
      pre.splits_.push_back(make_split(std::move(regex), literal, fast_paths));
    } else if (type == "ByteLevel") {
      byte_level = true;
      // Hugging Face's defaults when a field is absent: both true.
      pre.add_prefix_space_ = json_bool(*step, "add_prefix_space", true, step_at);
      if (json_bool(*step, "use_regex", true, step_at)) {
        pre.byte_level_regex_.emplace(kGpt2Pattern, Regex::Syntax::kRegex, step_at.str());
      }
    } else {
      throw_json_error(step_at / "type", "unsupported pre-tokenizer type \"" + type +
                                             "\" (supported: Sequence, Split, ByteLevel)");
    }
  }
  if (!byte_level) throw_json_error(at, "has no ByteLevel step; only byte-level BPE is supported");
  return pre;
}

PreTokenizer PreTokenizer::phi4(bool fast_paths) {
  return from_json(phi4_json(), JsonPath{"Phi-4's pre-tokenizer", ""}, fast_paths);
}

nlohmann::json PreTokenizer::phi4_json() {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"},
             {"pattern", {{"Regex", kCl100kPattern}}},
             {"behavior", "Isolated"},
             {"invert", false}},
            {{"type", "ByteLevel"},
             {"add_prefix_space", false},
             {"trim_offsets", true},
             {"use_regex", false}}}}};
}

PreTokenizer::Steps PreTokenizer::steps() const {
  Steps out;
  for (const SplitStep& split : splits_)
    out.splits.emplace_back(split.regex.pattern(), split.literal);
  out.add_prefix_space = add_prefix_space_;
  out.byte_level_regex = byte_level_regex_.has_value();
  return out;
}

void PreTokenizer::for_each(std::string_view text,
                            const std::function<void(const PreToken&)>& sink) const {
  if (!text.empty()) run(0, text, sink);
}

void PreTokenizer::split(std::string_view text, std::vector<PreToken>& out) const {
  for_each(text, [&](const PreToken& piece) { out.push_back(piece); });
}

void PreTokenizer::run(size_t step, std::string_view piece,
                       const std::function<void(const PreToken&)>& sink) const {
  if (step == splits_.size()) {
    byte_level(piece, sink);
    return;
  }
  const SplitStep& split = splits_[step];
  if (split.cl100k) {
    for_each_cl100k_piece(piece, [&](std::string_view sub) { run(step + 1, sub, sink); });
  } else {
    for_each_isolated(split.regex, piece, [&](std::string_view sub) { run(step + 1, sub, sink); });
  }
}

void PreTokenizer::byte_level(std::string_view piece,
                              const std::function<void(const PreToken&)>& sink) const {
  const bool prefix = add_prefix_space_ && piece.front() != ' ';
  if (!byte_level_regex_) {
    sink({piece, prefix});
    return;
  }
  if (!prefix) {
    for_each_isolated(*byte_level_regex_, piece, [&](std::string_view sub) { sink({sub, false}); });
    return;
  }
  // Run the regex on " " + piece, then map the pieces back: the one at offset 0 owns the
  // prepended space.
  std::string spaced = " ";
  spaced.append(piece);
  for_each_isolated(*byte_level_regex_, spaced, [&](std::string_view sub) {
    const auto offset = static_cast<size_t>(sub.data() - spaced.data());
    if (offset == 0) {
      sink({piece.substr(0, sub.size() - 1), true});
    } else {
      sink({piece.substr(offset - 1, sub.size()), false});
    }
  });
}

}  // namespace align
