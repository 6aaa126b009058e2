// A private (copy-on-write) memory map of a whole file: writes through it never reach the file.
// Shared ownership lets tensors created over the mapping keep it alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace align {

class MappedFile {
 public:
  // Maps `path` read-only; throws IoError naming the path on failure. Empty files are allowed.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace align
