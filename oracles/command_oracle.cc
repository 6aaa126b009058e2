#include "oracles/command_oracle.h"

#include <cctype>

#include "common/json_parse.h"
#include "oracles/oracle_support.h"
#include "sandbox/subprocess.h"

extern char** environ;

namespace align {
namespace {

std::string trimmed_lower(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b])))
    ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1])))
    --e;
  std::string out = s.substr(b, e - b);
  for (char& c : out)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string preview(const std::string& text) {
  const nlohmann::json shown = text.size() > 200 ? text.substr(0, 200) + "..." : text;
  return shown.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

bool parse_verdict(const std::string& output, bool* success) {
  const std::string text = trimmed_lower(output);
  if (text == "true" || text == "1" || text == "pass") return *success = true, true;
  if (text == "false" || text == "0" || text == "fail") return *success = false, true;
  nlohmann::json j;
  try {
    j = parse_json(output, "the command's output");
  } catch (const InputError&) {
    return false;
  }
  if (j.is_object() && j.size() >= 1 && j.contains("success") && j.at("success").is_boolean()) {
    *success = j.at("success").get<bool>();
    return true;
  }
  return false;
}

CommandOracle::CommandOracle(std::vector<std::string> argv, double timeout_s, size_t threads)
    : argv_(std::move(argv)), timeout_s_(timeout_s), threads_(threads) {
  for (char** e = environ; e && *e; ++e)
    env_.emplace_back(*e);
}

bool CommandOracle::grade(const std::string& completion, const nlohmann::json& fields) const {
  check_fields(fields, "oracle fields");
  nlohmann::json line = fields;
  line["completion"] = completion;
  SubprocessRequest request;
  request.argv = argv_;
  request.env = env_;
  request.stdin_data = line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  request.timeout_s = timeout_s_;
  const SubprocessResult result = run_subprocess(request);
  std::string command;
  for (const std::string& arg : argv_)
    command += (command.empty() ? "" : " ") + arg;
  const std::string what = "oracle command `" + command.substr(0, 200) + "`";
  if (result.timed_out) {
    throw InputError(what + ": timed out after " + nlohmann::json(timeout_s_).dump() +
                     " s (oracle.timeout_s); stdout: " + preview(result.out));
  }
  if (!result.succeeded()) {
    throw InputError(what + ": " + result.describe() + "; stdout: " + preview(result.out) +
                     "; stderr: " + preview(result.err));
  }
  bool success = false;
  if (!parse_verdict(result.out, &success)) {
    throw InputError(what +
                     ": expected true/false/1/0/pass/fail or {\"success\": bool} on "
                     "stdout, found " +
                     preview(result.out));
  }
  return success;
}

std::vector<bool> CommandOracle::grade_all(const std::vector<std::string>& completions,
                                           const nlohmann::json& fields) const {
  check_fields(fields, "oracle fields");
  return grade_in_parallel(*this, completions, fields, threads_);
}

void CommandOracle::check_fields(const nlohmann::json& fields, const std::string& where) const {
  if (!fields.is_object())
    throw InputError(where + ": expected a JSON object, found " + json_excerpt(fields));
}

std::unique_ptr<Oracle> make_command_oracle(ConfigReader& config) {
  std::vector<std::string> argv;
  double timeout_s = 30;
  config.require("command", argv);
  config.get("timeout_s", timeout_s);
  config.finish();
  const std::string where = config.source() + ": " + config.full("command");
  if (argv.empty() || argv[0].empty())
    throw InputError(where + ": expected a non-empty array of strings (argv), found []");
  const std::string program = find_program(argv[0]);
  if (program.empty())
    throw InputError(where + ": program \"" + argv[0] + "\" not found on PATH or not executable");
  argv[0] = program;
  if (!(timeout_s > 0 && timeout_s <= 86400))
    throw InputError(config.source() + ": " + config.full("timeout_s") +
                     ": expected seconds in (0, 86400], found " + nlohmann::json(timeout_s).dump());
  return std::make_unique<CommandOracle>(std::move(argv), timeout_s, default_grading_threads());
}

}  // namespace align
