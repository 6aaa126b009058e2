#include "common/progress.h"

#include <unistd.h>

#include <cstdio>

namespace align {

ProgressBar::ProgressBar(std::string label, int64_t total, bool visible)
    : label_(std::move(label)),
      total_(total),
      enabled_(visible && ::isatty(STDERR_FILENO) != 0),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

ProgressBar::~ProgressBar() {
  if (!enabled_) return;
  draw(true);
  std::fputc('\n', stderr);
}

void ProgressBar::advance(int64_t n) {
  done_ += n;
  draw(false);
}

void ProgressBar::draw(bool force) {
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const int width = 30;
  const int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r%s [%s] %lld/%lld  %.1fs  %.1f/s", label_.c_str(), bar.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_), seconds,
               seconds > 0 ? done_ / seconds : 0.0);
  std::fflush(stderr);
}

}  // namespace align
