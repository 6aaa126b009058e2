// Enums as config files and flags spell them: one table of (value, name) per enum gives parsing
// with a message listing the choices, and the name to write back.
#pragma once

#include <iterator>
#include <string>
#include <utility>

#include "common/error.h"

namespace align {

// An enum readable from config strings: specialise with
//   template <> struct EnumNames<E> {
//     static constexpr std::pair<E, const char*> table[] = {{E::kA, "a"}, {E::kB, "b"}};
//   };
template <typename E>
struct EnumNames;

// "a, b or c": the accepted names, for messages.
template <typename E>
std::string enum_choices() {
  std::string out;
  const size_t n = std::size(EnumNames<E>::table);
  for (size_t i = 0; i < n; ++i) {
    if (i > 0) out += i + 1 == n ? " or " : ", ";
    out += EnumNames<E>::table[i].second;
  }
  return out;
}

template <typename E>
const char* enum_name(E value) {
  for (const auto& [e, name] : EnumNames<E>::table)
    if (e == value) return name;
  throw Error("enum_name: a value without a name");
}

// Throws InputError "<field>: expected a, b or c, found 'x'".
template <typename E>
E parse_enum(const std::string& text, const std::string& field) {
  for (const auto& [e, name] : EnumNames<E>::table)
    if (text == name) return e;
  throw InputError(field + ": expected " + enum_choices<E>() + ", found '" + text + "'");
}

}  // namespace align
