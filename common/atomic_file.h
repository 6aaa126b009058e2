// Writing files so that a reader never sees a half-written one: the bytes go to `path.tmp.<pid>`,
// are flushed, and the temporary file is renamed over `path` only when complete.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace align {

class AtomicFile {
 public:
  // Opens the temporary file next to `path`; throws IoError naming the path on failure.
  explicit AtomicFile(std::string path);
  // Removes the temporary file unless commit() succeeded.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t size);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Flushes, fsyncs and renames the temporary file to the final path.
  void commit();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::string tmp_path_;
  std::FILE* file_ = nullptr;
  bool committed_ = false;
};

// Writes a whole file atomically.
void write_file_atomic(const std::string& path, std::string_view contents);

// Reads a whole file; throws IoError naming the path.
std::string read_file(const std::string& path);

// Parses a whole file; throws IoError when it cannot be read, InputError when it is not JSON.
nlohmann::json read_json_file(const std::string& path);

}  // namespace align
