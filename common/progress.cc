#include "common/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace align {

std::string format_duration(double seconds) {
  char buffer[32];
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  if (seconds < 60) {
    std::snprintf(buffer, sizeof buffer, "%.1fs", seconds);
  } else if (seconds < 3600) {
    const auto s = static_cast<long long>(seconds + 0.5);
    std::snprintf(buffer, sizeof buffer, "%lldm%02llds", s / 60, s % 60);
  } else {
    const auto m = static_cast<long long>(seconds / 60 + 0.5);
    std::snprintf(buffer, sizeof buffer, "%lldh%02lldm", m / 60, m % 60);
  }
  return buffer;
}

Progress::Progress(std::string label, int64_t total, bool visible, int64_t start,
                   double line_every_s)
    : label_(std::move(label)),
      total_(total),
      done_(start),
      start_done_(start),
      visible_(visible),
      terminal_(::isatty(STDERR_FILENO) != 0),
      line_every_s_(line_every_s),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_),
      last_line_(start_) {}

Progress::~Progress() {
  finish();
}

double Progress::elapsed_s() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

double Progress::eta_s() const {
  const int64_t here = done_ - start_done_;
  if (here <= 0 || total_ <= 0) return -1;
  return elapsed_s() / static_cast<double>(here) * static_cast<double>(total_ - done_);
}

void Progress::advance(int64_t n) {
  done_ += n;
  if (!visible_ || finished_) return;
  const auto now = std::chrono::steady_clock::now();
  if (terminal_) {
    if (now - last_draw_ >= std::chrono::milliseconds(100)) draw();
  } else if (line_every_s_ > 0 &&
             std::chrono::duration<double>(now - last_line_).count() >= line_every_s_) {
    print_line();
  }
}

void Progress::set_status(std::string status) {
  status_ = std::move(status);
}

void Progress::log() {
  if (!visible_ || finished_) return;
  if (terminal_) {
    draw();
  } else {
    print_line();
  }
}

void Progress::draw() {
  last_draw_ = std::chrono::steady_clock::now();
  const int width = 30;
  const int filled = total_ > 0 ? static_cast<int>(width * std::min(done_, total_) / total_) : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  const double eta = eta_s();
  std::fprintf(stderr, "\r%s [%s] %lld/%lld %3d%%  elapsed %s  ETA %s%s%s\033[K", label_.c_str(),
               bar.c_str(), static_cast<long long>(done_), static_cast<long long>(total_),
               total_ > 0 ? static_cast<int>(100 * done_ / total_) : 0,
               format_duration(elapsed_s()).c_str(), eta < 0 ? "?" : format_duration(eta).c_str(),
               status_.empty() ? "" : "  ", status_.c_str());
  std::fflush(stderr);
}

void Progress::print_line() {
  last_line_ = std::chrono::steady_clock::now();
  const double eta = eta_s();
  std::fprintf(stderr, "%s %lld/%lld (%d%%)%s%s; elapsed %s, ETA %s\n", label_.c_str(),
               static_cast<long long>(done_), static_cast<long long>(total_),
               total_ > 0 ? static_cast<int>(100 * done_ / total_) : 0, status_.empty() ? "" : ": ",
               status_.c_str(), format_duration(elapsed_s()).c_str(),
               eta < 0 ? "?" : format_duration(eta).c_str());
  std::fflush(stderr);
}

void Progress::finish(const std::string& why) {
  if (finished_) return;
  if (visible_) {
    const bool short_of_total = done_ < total_;
    if (terminal_) {
      draw();
      if (short_of_total && !why.empty()) std::fprintf(stderr, "  (%s)", why.c_str());
      std::fputc('\n', stderr);
    } else if (short_of_total && !why.empty()) {
      std::fprintf(stderr, "%s stopped at %lld/%lld: %s\n", label_.c_str(),
                   static_cast<long long>(done_), static_cast<long long>(total_), why.c_str());
    }
    std::fflush(stderr);
  }
  finished_ = true;
}

}  // namespace align
