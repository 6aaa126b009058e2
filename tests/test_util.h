// Helpers shared by the tests: a temporary directory removed at scope exit, and paths into the
// source tree (golden files), the build tree (the align binary) and the machine's cache (the
// SmolLM2 test model).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace align::testing {

inline std::string source_path(const std::string& relative) {
  return std::string(ALIGN_SOURCE_DIR) + "/" + relative;
}

inline std::string golden_path(const std::string& relative) {
  return source_path("tests/golden/" + relative);
}

inline std::string align_binary() {
  return std::string(ALIGN_BINARY_DIR) + "/bin/align";
}

// The SmolLM2-135M-Instruct folder in Phi-3 layout that tools/smollm2_folder.sh builds
// (docs/smollm2.md): $ALIGN_SMOLLM2_DIR, else $ALIGN_CACHE_DIR/models/SmolLM2-135M-Instruct-phi3
// (ALIGN_CACHE_DIR defaults to ~/.cache/align). The tests that read it fail when it is missing.
inline std::string smollm2_dir() {
  if (const char* dir = std::getenv("ALIGN_SMOLLM2_DIR"); dir && *dir) return dir;
  std::string cache;
  if (const char* c = std::getenv("ALIGN_CACHE_DIR"); c && *c) {
    cache = c;
  } else {
    const char* home = std::getenv("HOME");
    cache = std::string(home ? home : "") + "/.cache/align";
  }
  return cache + "/models/SmolLM2-135M-Instruct-phi3";
}

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "align-test-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) std::abort();
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

}  // namespace align::testing
