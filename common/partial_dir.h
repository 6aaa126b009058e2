// A folder that appears whole or not at all: it is built as `<path>.partial` and renamed into
// place only when complete, so a killed or failed command never leaves a half-written folder
// under the name the user asked for.
#pragma once

#include <string>

namespace align {

class PartialDir {
 public:
  // Creates `<path>.partial` empty (removing what a killed run left there). Throws InputError
  // when `path` exists and is not empty unless `overwrite` is set ("<key>: <path> ...").
  PartialDir(std::string path, bool overwrite, const std::string& key);
  // Removes `<path>.partial` unless commit() ran.
  ~PartialDir();
  PartialDir(const PartialDir&) = delete;
  PartialDir& operator=(const PartialDir&) = delete;

  const std::string& dir() const { return partial_; }  // where to write
  // Replaces `path` (an existing folder is removed first) with the partial folder.
  void commit();

 private:
  std::string path_;
  std::string partial_;
  bool committed_ = false;
};

}  // namespace align
