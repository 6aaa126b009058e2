#include "common/output_dir.h"

#include <signal.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/error.h"

namespace align {
namespace fs = std::filesystem;

void require_directory(const std::string& path, const std::string& key) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (path.empty()) throw InputError(key + ": empty path");
  if (!fs::exists(status)) throw InputError(key + ": " + path + ": no such directory");
  if (!fs::is_directory(status))
    throw InputError(key + ": " + path + " is a file, expected a directory");
}

void create_output_dir(const std::string& path, const std::string& key) {
  std::error_code error;
  const fs::file_status status = fs::status(path, error);
  if (fs::exists(status)) {
    if (!fs::is_directory(status))
      throw InputError(key + ": " + path + " exists and is not a directory");
    return;
  }
  // A parent that is a file would otherwise surface as "Not a directory" deep in the library.
  for (fs::path up = fs::path(path).parent_path(); !up.empty(); up = up.parent_path()) {
    const fs::file_status s = fs::status(up, error);
    if (fs::exists(s) && !fs::is_directory(s))
      throw InputError(key + ": " + path + ": " + up.string() + " is not a directory");
    if (fs::exists(s) || up == up.parent_path()) break;
  }
  fs::create_directories(path, error);
  if (error) throw IoError(key + ": cannot create " + path + ": " + error.message());
}

std::string file_fingerprint(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw IoError("cannot read " + path + ": " + std::strerror(errno));
  uint64_t hash = 1469598103934665603ull, size = 0;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
    for (size_t i = 0; i < n; ++i) {
      hash ^= static_cast<unsigned char>(buffer[i]);
      hash *= 1099511628211ull;
    }
    size += n;
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) throw IoError("cannot read " + path);
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return std::to_string(size) + "-" + hex;
}

int remove_stale_temp_files(const std::string& dir) {
  int removed = 0;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    const std::string name = it->path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || !it->is_regular_file(error)) continue;
    const std::string digits = name.substr(at + 5);
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(digits.c_str(), nullptr, 10);
    if (pid <= 0 || ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;
    std::error_code gone;
    if (fs::remove(it->path(), gone)) ++removed;
  }
  return removed;
}

}  // namespace align
