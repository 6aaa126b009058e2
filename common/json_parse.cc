#include "common/json_parse.h"
#include "common/output_dir.h"

#include <set>
#include <vector>

#include "common/error.h"

namespace align {
namespace {

// "line L, column C" of byte `offset` (1-based).
std::string position(std::string_view text, size_t offset) {
  size_t line = 1, column = 1;
  for (size_t i = 0; i < offset && i < text.size(); ++i) {
    if (text[i] == '\n') {
      ++line;
      column = 1;
    } else {
      ++column;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(column);
}

// Throws when arrays and objects nest deeper than kMaxJsonDepth (strings are skipped).
void check_depth(std::string_view text, const std::string& where) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        throw InputError(where + "JSON nested more than " + std::to_string(kMaxJsonDepth) +
                         " levels deep at " + position(text, i));
      }
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

}  // namespace

std::string excerpt(const std::string& text, size_t max_chars) {
  if (text.size() <= max_chars) return text;
  return text.substr(0, max_chars) + "... (" + std::to_string(text.size()) + " bytes)";
}

std::string json_excerpt(const nlohmann::json& value, size_t max_chars) {
  return excerpt(value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), max_chars);
}

nlohmann::json parse_json(std::string_view text, const std::string& where_in,
                          JsonParseOptions options) {
  const std::string where = where_in.empty() ? std::string() : where_in + ": ";
  check_depth(text, where);
  using json = nlohmann::json;
  // The keys seen in each open object, and the path to it, for duplicate-key messages.
  std::vector<std::set<std::string>> keys;
  std::vector<std::string> path;
  json::parser_callback_t callback = nullptr;
  if (options.reject_duplicate_keys) {
    callback = [&](int depth, json::parse_event_t event, json& parsed) {
      switch (event) {
        case json::parse_event_t::object_start:
          keys.emplace_back();
          break;
        case json::parse_event_t::object_end:
          keys.pop_back();
          break;
        case json::parse_event_t::key: {
          const std::string key = parsed.get<std::string>();
          if (!keys.back().insert(key).second) {
            std::string full;
            for (int d = 0;
                 d + 1 < static_cast<int>(keys.size()) && d < static_cast<int>(path.size()); ++d)
              full += path[static_cast<size_t>(d)] + ".";
            throw InputError(where + "key \"" + full + key + "\" appears twice in one object");
          }
          path.resize(keys.size());
          path.back() = key;
          break;
        }
        default:
          break;
      }
      (void)depth;
      return true;
    };
  }
  try {
    return json::parse(text.begin(), text.end(), callback);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for a number like 1e400
    throw InputError(where + "not valid JSON: " + excerpt(e.what(), 300));
  }
}

}  // namespace align
