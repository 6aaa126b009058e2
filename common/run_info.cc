#include "common/run_info.h"

#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "common/atomic_file.h"

#ifndef ALIGN_VERSION
#define ALIGN_VERSION "unknown"
#endif
#ifndef ALIGN_TORCH_VERSION
#define ALIGN_TORCH_VERSION "unknown"
#endif
#ifndef ALIGN_CUDA_VERSION
#define ALIGN_CUDA_VERSION "none"
#endif

namespace align {
namespace {

std::vector<std::string>& stored_command_line() {
  static std::vector<std::string> args;
  return args;
}

bool env_is_nonzero(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::string(v) != "0";
}

std::string host_name() {
  char buffer[256] = {};
  if (::gethostname(buffer, sizeof(buffer) - 1) != 0) return "";
  return buffer;
}

}  // namespace

void set_command_line(int argc, const char* const* argv) {
  stored_command_line().assign(argv, argv + argc);
}

const std::vector<std::string>& command_line() {
  return stored_command_line();
}

BuildInfo build_info() {
  return {ALIGN_VERSION, ALIGN_TORCH_VERSION, ALIGN_CUDA_VERSION};
}

std::string utc_now_iso8601() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

bool is_rank_zero() {
  // torchrun's RANK wins over SLURM's, as in parallel/launch_env.h.
  if (std::getenv("RANK") != nullptr) return !env_is_nonzero("RANK");
  return !env_is_nonzero("SLURM_PROCID");
}

RunRecord::RunRecord(std::string dir, std::string device)
    : dir_(std::move(dir)), enabled_(is_rank_zero()) {
  const BuildInfo build = build_info();
  record_ = {{"command", command_line()},
             {"align_version", build.align_version},
             {"libtorch", build.libtorch},
             {"cuda", build.cuda},
             {"device", std::move(device)},
             {"host", host_name()},
             {"started_at", utc_now_iso8601()},
             {"ended_at", ""},
             {"status", "running"}};
  // A folder the run has not made yet is left to the command: it checks its inputs before it
  // creates anything, so a rejected run leaves no folder behind. A rerun's folder gets "running".
  if (enabled_ && std::filesystem::is_directory(dir_)) write();
}

void RunRecord::finish(bool ok, const std::string& error) {
  record_["ended_at"] = utc_now_iso8601();
  record_["status"] = ok ? "finished" : "failed";
  if (!ok) record_["error"] = error;
  if (enabled_ && std::filesystem::is_directory(dir_)) write();
}

void RunRecord::finish_quietly(const std::string& error) noexcept {
  try {
    finish(false, error);
  } catch (...) {  // NOLINT(bugprone-empty-catch): the caller rethrows the run's own error
  }
}

void RunRecord::write() const {
  const std::string text = record_.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
  write_file_atomic(dir_ + "/run.json", text + "\n");
}

}  // namespace align
