// The progress of a long job on stderr, with or without a terminal:
//   - at a terminal: one line redrawn at most ten times a second,
//       sft [##########....................] 20/60 33%  elapsed 17.1s  ETA 34.2s  loss 1.234
//   - otherwise (a pipe, a file, torchrun, SLURM): a line when the job says so (log(), e.g.
//     every log_every steps) and, with `line_every_s` > 0, at least that often,
//       sft 20/60 (33%): loss 1.234, lr 2.0e-05; elapsed 17.1s, ETA 34.2s
// The ETA extrapolates the rate since construction, counting only work done here (a resumed run
// starts at its step). finish() ends the line at 100% or says why it stopped short.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace align {

class Progress {
 public:
  // `visible` false: never printed (a data-parallel job prints only on rank 0). `start`: work
  // already done before (a resumed run).
  Progress(std::string label, int64_t total, bool visible = true, int64_t start = 0,
           double line_every_s = 0);
  ~Progress();  // finish() unless called
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1);
  // The latest figures shown after the counts ("loss 1.234, lr 2.0e-05").
  void set_status(std::string status);
  // Without a terminal: prints the line now. At a terminal: redraws.
  void log();
  // Ends the display: the last line, and when the count is short of the total, `why` (e.g.
  // "samples stopped at their stop tokens"). Idempotent.
  void finish(const std::string& why = "");

  int64_t done() const { return done_; }
  double elapsed_s() const;
  // Seconds left at the current rate; negative when unknown.
  double eta_s() const;

 private:
  void draw();
  void print_line();
  std::string label_;
  int64_t total_;
  int64_t done_;
  int64_t start_done_;
  bool visible_;
  bool terminal_;
  double line_every_s_;
  bool finished_ = false;
  std::string status_;
  std::chrono::steady_clock::time_point start_, last_draw_, last_line_;
};

// "17.1s", "3m05s", "1h02m".
std::string format_duration(double seconds);

}  // namespace align
