// Parsing JSON with the checks every reader needs: nesting at most kMaxJsonDepth levels (deeper
// input would exhaust the stack of the code that walks it: a 70,000-deep value crashed every
// reader), and, for configs and file headers, no key twice in one object (a JSON parser keeps the
// last one silently). Errors are InputError "<where>: ..." with the line and column, so `where`
// names the file or the file:line of a JSONL record.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace align {

inline constexpr int kMaxJsonDepth = 512;

struct JsonParseOptions {
  bool reject_duplicate_keys = false;
};

// `where` may be empty (the caller adds the place).
nlohmann::json parse_json(std::string_view text, const std::string& where,
                          JsonParseOptions options = {});

// The first `max_chars` of `text`, and its size when cut: for messages that quote input.
std::string excerpt(const std::string& text, size_t max_chars = 200);
// A value as compact JSON, cut like excerpt().
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 200);

}  // namespace align
