// Typed errors thrown inside the library. Only the command-line entry point catches them; it prints
// the message and exits non-zero. Messages name the file, line or field, what was expected and what
// was found.
#pragma once

#include <stdexcept>
#include <string>

namespace align {

// Base of every error align throws on purpose.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The user's input (a file, a flag, a config field) is wrong.
class InputError : public Error {
 public:
  explicit InputError(const std::string& message) : Error(message) {}
};

// The operating system refused something (open, read, write, rename).
class IoError : public Error {
 public:
  explicit IoError(const std::string& message) : Error(message) {}
};

}  // namespace align
