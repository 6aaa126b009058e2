#include "data/json_fields.h"

#include "common/atomic_file.h"
#include "common/error.h"

namespace align {

std::string describe_json(const nlohmann::json& value) {
  std::string dump = value.dump();
  if (dump.size() > 40) dump = dump.substr(0, 37) + "...";
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "string " + dump;
    case nlohmann::json::value_t::boolean:
      return "boolean " + dump;
    default:
      return "number " + dump;
  }
}

void throw_json_error(const JsonPath& at, const std::string& message) {
  throw InputError(at.str() + ": " + message);
}

const nlohmann::json& json_member(const nlohmann::json& object, const std::string& key,
                                  const JsonPath& at) {
  if (!object.is_object()) throw_json_error(at, "expected an object, got " + describe_json(object));
  auto it = object.find(key);
  if (it == object.end()) throw_json_error(at / key, "missing");
  return *it;
}

const nlohmann::json* json_optional(const nlohmann::json& object, const std::string& key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string json_string(const nlohmann::json& value, const JsonPath& at) {
  if (!value.is_string()) throw_json_error(at, "expected a string, got " + describe_json(value));
  return value.get<std::string>();
}

bool json_bool(const nlohmann::json& object, const std::string& key, bool fallback,
               const JsonPath& at) {
  const nlohmann::json* value = json_optional(object, key);
  if (!value) return fallback;
  if (!value->is_boolean()) {
    throw_json_error(at / key, "expected true or false, got " + describe_json(*value));
  }
  return value->get<bool>();
}

int64_t json_index(const nlohmann::json& value, int64_t max, const JsonPath& at) {
  if (!value.is_number_integer()) {
    throw_json_error(at, "expected an integer id, got " + describe_json(value));
  }
  if (value.is_number_unsigned()) {
    const auto v = value.get<uint64_t>();
    if (v > static_cast<uint64_t>(max)) {
      throw_json_error(
          at, "id " + std::to_string(v) + " is out of range [0, " + std::to_string(max) + "]");
    }
    return static_cast<int64_t>(v);
  }
  const auto v = value.get<int64_t>();
  if (v < 0 || v > max) {
    throw_json_error(
        at, "id " + std::to_string(v) + " is out of range [0, " + std::to_string(max) + "]");
  }
  return v;
}

}  // namespace align
