// Running the built `align` binary from the end-to-end tests and reading what it wrote.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace align::testing {

struct CliResult {
  int code = -1;       // exit status; -1 when killed by a signal or not started
  std::string output;  // stdout and stderr together
};

// A shell command line (stdout and stderr captured).
inline CliResult run_cli_command(const std::string& line) {
  const std::string command = "(" + line + ") 2>&1";
  CliResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof(buffer), pipe)) > 0)
    result.output.append(buffer, n);
  const int status = ::pclose(pipe);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline CliResult run_cli(const std::string& args) {
  return run_cli_command(align_binary() + " " + args);
}

// The exit status; the output goes to *output when given.
inline int run(const std::string& args, std::string* output = nullptr) {
  CliResult r = run_cli(args);
  if (output) *output = std::move(r.output);
  return r.code;
}

inline std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> records;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    records.push_back(nlohmann::json::parse(line));
  return records;
}

}  // namespace align::testing
