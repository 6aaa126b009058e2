// The code oracle, {"type": "code", "timeout_s": 10, "memory_mb": 512, "language": "python",
// "sandbox": "namespaces"}. Item "tests": Python source with asserts (a string, or an array of
// strings joined by newlines). The program is extract_code(completion) (answer_extraction.h), a
// blank line, then the tests, written to solution.py in a fresh scratch directory that is removed
// afterwards, and run as `python3 -I -S solution.py` by run_subprocess in its sandbox
// (subprocess.h): environment PATH=/usr/bin:/bin, HOME=<the scratch dir>, LANG=C.UTF-8 only,
// stdin /dev/null, wall-clock limit timeout_s, CPU timeout_s + 1 s, address space memory_mb, files
// 16 MB, 64 open files, the syscall filter (no sockets, no child processes, nothing reaching
// another process).
//   sandbox "namespaces" (the default): in its own user, PID, network, mount and IPC namespaces
//     through bubblewrap (sandbox/namespaces.h), as an unprivileged user even when align is root,
//     seeing only /usr read-only, private /tmp and /dev/shm and the scratch dir at /work
//     (python3 must then be /usr/bin/python3 or elsewhere under /usr). Building the oracle checks
//     once that this works, and refuses with the reason when it does not.
//   sandbox "none": the same limits and filter without namespaces: the program can read and write
//     what the user running align can; a warning says so. For machines without user namespaces.
// Success = exit status 0 within the time limit. grade_all runs up to default_grading_threads()
// programs at once.
#pragma once

#include <memory>
#include <string>

#include "common/config_reader.h"
#include "oracles/oracle.h"

namespace align {

struct CodeOracleOptions {
  double timeout_s = 10;
  size_t memory_mb = 512;
  std::string python;      // the interpreter's path
  size_t threads = 2;      // grade_all's parallelism
  bool namespaces = true;  // sandbox "namespaces"; false: "none"
};

class CodeOracle : public Oracle {
 public:
  explicit CodeOracle(CodeOracleOptions options) : options_(std::move(options)) {}
  bool grade(const std::string& completion, const nlohmann::json& fields) const override;
  std::vector<bool> grade_all(const std::vector<std::string>& completions,
                              const nlohmann::json& fields) const override;
  void check_fields(const nlohmann::json& fields, const std::string& where) const override;
  std::string name() const override { return "code"; }

 private:
  CodeOracleOptions options_;
};

// /usr/bin/python3 when executable, else python3 on PATH; "" when neither.
std::string find_python3();

// The item's tests as one string.
std::string code_tests(const nlohmann::json& fields);

std::unique_ptr<Oracle> make_code_oracle(ConfigReader& config);

}  // namespace align
