#include "common/partial_dir.h"

#include <filesystem>

#include "common/error.h"

namespace align {
namespace fs = std::filesystem;

PartialDir::PartialDir(std::string path, bool overwrite, const std::string& key)
    : path_(std::move(path)), partial_(path_ + ".partial") {
  if (fs::exists(path_) && !overwrite && !(fs::is_directory(path_) && fs::is_empty(path_))) {
    throw InputError(key + ": " + path_ +
                     " already exists and is not empty (pass --overwrite to replace it)");
  }
  fs::remove_all(partial_);
  fs::create_directories(partial_);
}

PartialDir::~PartialDir() {
  if (committed_) return;
  std::error_code ignored;
  fs::remove_all(partial_, ignored);
}

void PartialDir::commit() {
  if (fs::exists(path_)) fs::remove_all(path_);
  fs::rename(partial_, path_);
  committed_ = true;
}

}  // namespace align
