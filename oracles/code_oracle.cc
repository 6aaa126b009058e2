#include "oracles/code_oracle.h"

#include <unistd.h>

#include <fstream>
#include <iostream>
#include <mutex>

#include "oracles/answer_extraction.h"
#include "oracles/oracle_support.h"
#include "sandbox/namespaces.h"
#include "sandbox/subprocess.h"

namespace align {

std::string find_python3() {
  if (::access("/usr/bin/python3", X_OK) == 0) return "/usr/bin/python3";
  return find_program("python3");
}

std::string code_tests(const nlohmann::json& fields) {
  const nlohmann::json& tests = fields.at("tests");
  if (tests.is_string()) return tests.get<std::string>();
  std::string joined;
  for (const nlohmann::json& line : tests)
    joined += line.get<std::string>() + "\n";
  return joined;
}

bool CodeOracle::grade(const std::string& completion, const nlohmann::json& fields) const {
  check_fields(fields, "oracle fields");
  const ScratchDir dir;
  const std::string file = dir.path() + "/solution.py";
  {
    std::ofstream out(file, std::ios::binary);
    out << extract_code(completion) << "\n\n" << code_tests(fields) << "\n";
    if (!out.flush()) throw IoError("code oracle: cannot write " + file);
  }
  SubprocessRequest request;
  request.argv = {options_.python, "-I", "-S", "solution.py"};
  request.cwd = dir.path();
  const std::string home = options_.namespaces ? kSandboxWorkDir : dir.path();
  request.env = {"PATH=/usr/bin:/bin", "HOME=" + home, "LANG=C.UTF-8"};
  request.timeout_s = options_.timeout_s;
  request.sandbox = true;
  request.isolation = options_.namespaces ? Isolation::kNamespaces : Isolation::kNone;
  request.memory_mb = options_.memory_mb;
  return run_subprocess(request).succeeded();
}

std::vector<bool> CodeOracle::grade_all(const std::vector<std::string>& completions,
                                        const nlohmann::json& fields) const {
  check_fields(fields, "oracle fields");
  return grade_in_parallel(*this, completions, fields, options_.threads);
}

void CodeOracle::check_fields(const nlohmann::json& fields, const std::string& where) const {
  const nlohmann::json& tests = require_field(fields, "tests", where, "code");
  bool ok = tests.is_string() || (tests.is_array() && !tests.empty());
  for (const nlohmann::json& line : tests.is_array() ? tests : nlohmann::json::array())
    ok = ok && line.is_string();
  if (!ok) field_type_error(where, "tests", "Python code: a string or an array of strings", tests);
}

std::unique_ptr<Oracle> make_code_oracle(ConfigReader& config) {
  CodeOracleOptions options;
  std::string language = "python", sandbox = "namespaces";
  config.get("timeout_s", options.timeout_s);
  config.get("memory_mb", options.memory_mb);
  config.get("language", language);
  config.get("sandbox", sandbox);
  config.finish();
  const std::string where = config.source() + ": ";
  if (language != "python")
    throw InputError(where + config.full("language") + ": expected \"python\", found \"" +
                     language + "\"");
  if (!(options.timeout_s > 0 && options.timeout_s <= 3600))
    throw InputError(where + config.full("timeout_s") + ": expected seconds in (0, 3600], found " +
                     std::to_string(options.timeout_s));
  if (options.memory_mb < 64 || options.memory_mb > (1u << 20))
    throw InputError(where + config.full("memory_mb") + ": expected 64 to 1048576, found " +
                     std::to_string(options.memory_mb));
  if (sandbox != "namespaces" && sandbox != "none")
    throw InputError(where + config.full("sandbox") +
                     ": expected \"namespaces\" or \"none\", found \"" + sandbox + "\"");
  options.namespaces = sandbox == "namespaces";
  options.python = find_python3();
  if (options.python.empty())
    throw InputError(where + "the code oracle needs python3: not at /usr/bin/python3 nor on PATH");
  if (options.namespaces) {
    if (options.python.rfind("/usr/", 0) != 0)
      throw InputError(where + config.full("sandbox") +
                       ": the namespace sandbox shows programs "
                       "only /usr, but python3 is " +
                       options.python + " (install Debian's python3, or set " +
                       config.full("sandbox") + " to \"none\")");
    const std::string problem = namespace_isolation_problem();
    if (!problem.empty())
      throw InputError(where + config.full("sandbox") +
                       ": the code oracle runs candidate programs in their own namespaces, which "
                       "does not work here: " +
                       problem + ". Fix that, or set " + config.full("sandbox") +
                       " to \"none\" to run them with limits and a syscall filter only (they can "
                       "then read and write whatever the user running align can)");
  } else {
    static std::once_flag warned;
    std::call_once(warned, [] {
      std::cerr << "align: warning: code oracle sandbox \"none\": candidate programs run with "
                   "limits and a syscall filter but can read and write whatever this user can; "
                   "use sandbox \"namespaces\" where user namespaces are available\n";
    });
  }
  options.threads = default_grading_threads();
  return std::make_unique<CodeOracle>(std::move(options));
}

}  // namespace align
