// Reading fields of a parsed JSON file with errors that name the file and the field path, e.g.
// "dir/tokenizer.json: model.dropout: expected null, got number 0.1".
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace align {

// Where a JSON value sits: the file and the dotted path inside it.
struct JsonPath {
  std::string file;
  std::string path;

  JsonPath operator/(const std::string& key) const {
    return {file, path.empty() ? key : path + "." + key};
  }
  JsonPath operator[](size_t index) const {
    return {file, path + "[" + std::to_string(index) + "]"};
  }
  std::string str() const { return path.empty() ? file : file + ": " + path; }
};

// "string \"abc\"", "number 3", "object", ... for messages.
std::string describe_json(const nlohmann::json& value);

// Throws InputError "<file>: <path>: <message>".
[[noreturn]] void throw_json_error(const JsonPath& at, const std::string& message);

// The member `key` of `object` (which must be an object); throws when missing.
const nlohmann::json& json_member(const nlohmann::json& object, const std::string& key,
                                  const JsonPath& at);
// The member if present and not null.
const nlohmann::json* json_optional(const nlohmann::json& object, const std::string& key);

std::string json_string(const nlohmann::json& value, const JsonPath& at);
bool json_bool(const nlohmann::json& object, const std::string& key, bool fallback,
               const JsonPath& at);
// An integer in [0, max]; rejects floats, strings, negatives.
int64_t json_index(const nlohmann::json& value, int64_t max, const JsonPath& at);

}  // namespace align
