// run.json: what ran, with which build, where and when, written into a run's output folder by the
// command layer (align/*_command.cc) so that `align report` can show it:
//   {"command": [argv...], "align_version", "libtorch", "cuda", "device", "host",
//    "started_at", "ended_at" (ISO 8601 UTC, "" while running), "status": "running"|"finished"|
//    "failed"[, "error": message]}
// Written atomically at the start (status running) when the folder exists already (a rerun,
// --resume) and at the end (finished, or failed once the command had made its folder). A run the
// command rejects before making its folder leaves none behind. A rerun or --resume of the same
// folder replaces it. Only rank 0 of a launched job writes (RANK / SLURM_PROCID unset or
// 0). The versions are fixed at configure time (CMake: ALIGN_VERSION from `git describe --always
// --dirty`, ALIGN_TORCH_VERSION, ALIGN_CUDA_VERSION); this file includes no Torch header.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace align {

// The process's command line; main() sets it once, before parsing.
void set_command_line(int argc, const char* const* argv);
const std::vector<std::string>& command_line();

struct BuildInfo {
  std::string align_version;  // git describe of the source tree at configure time, or "unknown"
  std::string libtorch;       // LibTorch version the binary was built against
  std::string cuda;           // CUDA compiler version, or "none"
};
BuildInfo build_info();

// Now as ISO 8601 UTC, e.g. "2026-12-01T14:48:53Z".
std::string utc_now_iso8601();

// False on a rank other than 0 of a launched job (RANK or SLURM_PROCID set and not 0).
bool is_rank_zero();

class RunRecord {
 public:
  // Writes DIR/run.json with status "running" when DIR exists; a no-op off rank 0.
  RunRecord(std::string dir, std::string device);
  // Writes it with ended_at and status "finished", or "failed" with `error` (when DIR exists).
  void finish(bool ok, const std::string& error = "");
  // finish(false, error) that swallows its own write errors (the run's error is the one to report).
  void finish_quietly(const std::string& error) noexcept;
  const nlohmann::json& record() const { return record_; }

 private:
  void write() const;
  std::string dir_;
  bool enabled_ = true;
  nlohmann::json record_;
};

// Runs `body` between a run.json with status running and one with finished (on return) or failed
// (on an exception, which is rethrown).
template <typename Body>
void record_run(const std::string& dir, const std::string& device, Body&& body) {
  RunRecord record(dir, device);
  try {
    std::forward<Body>(body)();
  } catch (const std::exception& e) {
    record.finish_quietly(e.what());
    throw;
  } catch (...) {
    record.finish_quietly("unknown error");
    throw;
  }
  record.finish(true);
}

}  // namespace align
