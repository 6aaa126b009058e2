// A one-line progress bar on stderr, drawn only when stderr is a terminal (logs and CI stay clean),
// redrawn at most ten times a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace align {

class ProgressBar {
 public:
  // `visible` false: never drawn (a data-parallel job draws only on rank 0).
  ProgressBar(std::string label, int64_t total, bool visible = true);
  ~ProgressBar();  // finishes the line
  void advance(int64_t n = 1);

 private:
  void draw(bool force);
  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace align
