// The code oracle, {"type": "code", "timeout_s": 10, "memory_mb": 512, "language": "python"}.
// Item "tests": Python source with asserts (a string, or an array of strings joined by newlines).
// The program is extract_code(completion) (answer_extraction.h), a blank line, then the tests,
// written to solution.py in a fresh temporary directory that is removed afterwards, and run as
// `python3 -I -S solution.py` (python3 from /usr/bin/python3, else PATH) by run_subprocess in its
// sandbox (subprocess.h): cwd = that directory, environment PATH=/usr/bin:/bin, HOME=<dir>,
// LANG=C.UTF-8 only, stdin /dev/null, wall-clock limit timeout_s, CPU timeout_s + 1 s, address
// space memory_mb, files 16 MB, 64 open files, no sockets, no child processes. Success = exit
// status 0 within the time limit. grade_all runs up to default_grading_threads() programs at once.
#pragma once

#include <memory>
#include <string>

#include "common/config_reader.h"
#include "oracles/oracle.h"

namespace align {

struct CodeOracleOptions {
  double timeout_s = 10;
  size_t memory_mb = 512;
  std::string python;  // the interpreter's path
  size_t threads = 2;  // grade_all's parallelism
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
