// One definition per config section. A section is a plain struct whose fields() names every key
// once, with its member and a line of help; its defaults are the members' initialisers:
//
//   struct OptimizerSection {
//     double lr = 2e-5;
//     LrScheduleType schedule = LrScheduleType::kCosine;  // an enum with EnumNames (below)
//     template <typename V>
//     void fields(V& v) {
//       v("lr", lr, "peak learning rate");
//       v("schedule", schedule, "shape after warmup");
//     }
//   };
//
// From that one list follow reading (read_fields: strict, unknown keys are errors naming their
// path, types checked, enums parsed once into the typed member), writing (to_json_fields: every
// key, defaults included, enums by name) and the key list for --help (describe_fields). A config is
// a section whose fields() lists sections: v.section("optimizer", optimizer). v.required(key, m,
// help) marks a key that must be present.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/config_reader.h"
#include "common/enum_names.h"
#include "common/error.h"

namespace align {

namespace config_detail {

class Reader {
 public:
  explicit Reader(ConfigReader& r) : r_(r) {}
  template <typename T>
  void operator()(const char* key, T& value, const char* /*help*/) {
    read(key, value, false);
  }
  template <typename T>
  void required(const char* key, T& value, const char* /*help*/) {
    read(key, value, true);
  }
  template <typename S>
  void section(const char* key, S& s) {
    ConfigReader sub = r_.section(key);
    Reader inner(sub);
    s.fields(inner);
    sub.finish();
  }

 private:
  template <typename T>
  void read(const char* key, T& value, bool required) {
    if constexpr (std::is_enum_v<T>) {
      std::string text = enum_name(value);
      if (required) {
        r_.require(key, text);
      } else {
        r_.get(key, text);
      }
      value = parse_enum<T>(text, r_.source() + ": " + r_.full(key));
    } else if constexpr (std::is_same_v<T, nlohmann::json>) {
      if (!r_.has(key)) {
        if (required) throw InputError(r_.source() + ": missing required key " + r_.full(key));
        return;
      }
      r_.get(key, value);
    } else if (required) {
      r_.require(key, value);
    } else {
      r_.get(key, value);
    }
  }
  ConfigReader& r_;
};

class Writer {
 public:
  explicit Writer(nlohmann::json& j) : j_(j) {}
  template <typename T>
  void operator()(const char* key, const T& value, const char* /*help*/) {
    if constexpr (std::is_enum_v<T>) {
      j_[key] = enum_name(value);
    } else {
      j_[key] = value;
    }
  }
  template <typename T>
  void required(const char* key, const T& value, const char* help) {
    (*this)(key, value, help);
  }
  template <typename S>
  void section(const char* key, const S& s) {
    nlohmann::json sub = nlohmann::json::object();
    Writer inner(sub);
    const_cast<S&>(s).fields(inner);  // fields() only reads through a Writer
    j_[key] = sub;
  }

 private:
  nlohmann::json& j_;
};

}  // namespace config_detail

// One key of a config for --help: "optimizer.lr", its JSON type, its default as JSON, its help
// line.
struct ConfigKey {
  std::string path;
  std::string type;
  std::string default_value;
  std::string help;
  bool required = false;
};

namespace config_detail {

template <typename T>
struct IsVector : std::false_type {};
template <typename T>
struct IsVector<std::vector<T>> : std::true_type {};

// The type a key takes in the JSON file, as --help names it.
template <typename T>
std::string type_name() {
  if constexpr (std::is_same_v<T, bool>)
    return "bool";
  else if constexpr (std::is_enum_v<T>)
    return "enum";
  else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>)
    return "uint";
  else if constexpr (std::is_integral_v<T>)
    return "int";
  else if constexpr (std::is_floating_point_v<T>)
    return "float";
  else if constexpr (std::is_same_v<T, std::string>)
    return "string";
  else if constexpr (IsVector<T>::value)
    return "list[" + type_name<typename T::value_type>() + "]";
  else
    return "json";
}

class Describer {
 public:
  Describer(std::vector<ConfigKey>& out, std::string prefix)
      : out_(out), prefix_(std::move(prefix)) {}
  template <typename T>
  void operator()(const char* key, const T& value, const char* help) {
    add(key, value, help, false);
  }
  template <typename T>
  void required(const char* key, const T& value, const char* help) {
    add(key, value, help, true);
  }
  template <typename S>
  void section(const char* key, const S& s) {
    Describer inner(out_, prefix_ + key + ".");
    const_cast<S&>(s).fields(inner);  // fields() only reads through a Describer
  }

 private:
  template <typename T>
  void add(const char* key, const T& value, const char* help, bool required) {
    nlohmann::json j = nlohmann::json::object();
    Writer writer(j);
    writer(key, value, help);
    std::string text = j.at(key).dump();
    if constexpr (std::is_enum_v<T>) text += " (" + enum_choices<T>() + ")";
    out_.push_back({prefix_ + key, type_name<T>(), text, help, required});
  }
  std::vector<ConfigKey>& out_;
  std::string prefix_;
};

}  // namespace config_detail

// Reads every field of `s` from the object `r` reads (absent keys keep their defaults), then
// rejects keys nobody read. Throws InputError naming the file and the key's path.
template <typename S>
void read_fields(ConfigReader& r, S& s) {
  config_detail::Reader reader(r);
  s.fields(reader);
  r.finish();
}

// Every field of `s` as a JSON object (nested for sections), defaults included.
template <typename S>
nlohmann::json to_json_fields(const S& s) {
  nlohmann::json j = nlohmann::json::object();
  config_detail::Writer writer(j);
  const_cast<S&>(s).fields(writer);  // fields() only reads through a Writer
  return j;
}

// Every key of `s` with its default and help, in fields() order.
template <typename S>
std::vector<ConfigKey> describe_fields(const S& s) {
  std::vector<ConfigKey> out;
  config_detail::Describer describer(out, "");
  const_cast<S&>(s).fields(describer);  // fields() only reads through a Describer
  return out;
}

}  // namespace align
