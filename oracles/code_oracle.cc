#include "oracles/code_oracle.h"

#include <unistd.h>

#include <fstream>

#include "oracles/answer_extraction.h"
#include "oracles/oracle_support.h"
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
  request.env = {"PATH=/usr/bin:/bin", "HOME=" + dir.path(), "LANG=C.UTF-8"};
  request.timeout_s = options_.timeout_s;
  request.sandbox = true;
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
  std::string language = "python";
  config.get("timeout_s", options.timeout_s);
  config.get("memory_mb", options.memory_mb);
  config.get("language", language);
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
  options.python = find_python3();
  if (options.python.empty())
    throw InputError(where + "the code oracle needs python3: not at /usr/bin/python3 nor on PATH");
  options.threads = default_grading_threads();
  return std::make_unique<CodeOracle>(std::move(options));
}

}  // namespace align
