// The datasets of tests/golden/datasets/ (tools/golden_datasets.py: Parquet shards the `datasets`
// package saved, and each split's JSONL export) put into a Hugging Face hub cache the test writes,
// as huggingface_hub lays a downloaded dataset out:
//   ROOT/datasets--align-test--NAME/refs/main                 kGoldenCommit
//   ROOT/datasets--align-test--NAME/snapshots/kGoldenCommit/data/SPLIT-0000I-of-0000N.parquet
// HubCacheForTest points HF_HUB_CACHE at it for the test's lifetime.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string>

#include "tests/test_util.h"

namespace align::testing {

inline const std::string kGoldenCommit = "0123456789abcdef0123456789abcdef01234567";

// tests/golden/datasets/NAME.SPLIT.jsonl: what `datasets` reads from the split.
inline std::string golden_export(const std::string& name, const std::string& split) {
  return golden_path("datasets/" + name + "." + split + ".jsonl");
}

class HubCacheForTest {
 public:
  HubCacheForTest() {
    namespace fs = std::filesystem;
    for (const auto& entry : fs::directory_iterator(golden_path("datasets"))) {
      const std::string name = entry.path().filename().string();
      if (!entry.is_directory() || name == "bad") continue;
      const fs::path repo = fs::path(dir_.path()) / ("datasets--align-test--" + name);
      fs::create_directories(repo / "refs");
      write_text((repo / "refs" / "main").string(), kGoldenCommit);
      fs::create_directories(repo / "snapshots");
      fs::copy(entry.path(), repo / "snapshots" / kGoldenCommit, fs::copy_options::recursive);
    }
    if (const char* old = std::getenv("HF_HUB_CACHE")) old_ = old;
    ::setenv("HF_HUB_CACHE", dir_.path().c_str(), 1);
  }
  ~HubCacheForTest() {
    if (old_) {
      ::setenv("HF_HUB_CACHE", old_->c_str(), 1);
    } else {
      ::unsetenv("HF_HUB_CACHE");
    }
  }
  HubCacheForTest(const HubCacheForTest&) = delete;
  HubCacheForTest& operator=(const HubCacheForTest&) = delete;

  const std::string& root() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::optional<std::string> old_;
};

}  // namespace align::testing
