// The command oracle, {"type": "command", "command": ["prog", "arg", ...], "timeout_s": 30}: a
// user-supplied grader. argv[0] is resolved on PATH (or taken as a path when it has a '/') when
// the oracle is built. For each completion the program runs (run_subprocess, subprocess.h: its own
// process group, the caller's environment and working directory, not sandboxed: it is the
// user's own program) with one JSON line on stdin: the oracle fields plus "completion" (invalid
// UTF-8 replaced by U+FFFD). Its stdout, trimmed, is the verdict: true/1/pass or false/0/fail
// (case-insensitive), or a JSON object {"success": bool}.
// A broken grader is an InputError, never a silent failure: output that is none of the above,
// a non-zero exit status, death by a signal, or running past timeout_s (the process group is
// killed) all throw, naming the command and showing the first 200 bytes of its stdout/stderr.
// grade_all runs up to default_grading_threads() graders at once.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "common/config_reader.h"
#include "oracles/oracle.h"

namespace align {

class CommandOracle : public Oracle {
 public:
  // argv[0] already resolved to a path.
  CommandOracle(std::vector<std::string> argv, double timeout_s, size_t threads);
  bool grade(const std::string& completion, const nlohmann::json& fields) const override;
  std::vector<bool> grade_all(const std::vector<std::string>& completions,
                              const nlohmann::json& fields) const override;
  void check_fields(const nlohmann::json& fields, const std::string& where) const override;
  std::string name() const override { return "command"; }

 private:
  std::vector<std::string> argv_;
  double timeout_s_;
  size_t threads_;
  std::vector<std::string> env_;
};

// Reads a verdict printed by a grader; false when `output` is none of the accepted forms.
bool parse_verdict(const std::string& output, bool* success);

std::unique_ptr<Oracle> make_command_oracle(ConfigReader& config);

}  // namespace align
