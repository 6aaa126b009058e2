// The command oracle with small shell graders written by the test: verdict forms, the JSON line
// on stdin, and broken graders (garbage, non-zero exit, timeout) as InputErrors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>

#include "oracles/command_oracle.h"
#include "oracles/oracle.h"
#include "tests/test_util.h"

namespace align {
namespace {

using ::testing::HasSubstr;

const nlohmann::json kNoFields = nlohmann::json::object();

// A grader script in `dir` with the given body; returns its path.
std::string write_grader(const testing::TempDir& dir, const std::string& name,
                         const std::string& body) {
  const std::string path = dir.file(name);
  testing::write_text(path, "#!/bin/sh\n" + body);
  ::chmod(path.c_str(), 0755);
  return path;
}

std::unique_ptr<Oracle> command_oracle(const std::string& script, double timeout_s = 30) {
  return make_oracle(
      {{"type", "command"}, {"command", {"/bin/sh", script}}, {"timeout_s", timeout_s}},
      "pts.json");
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(OracleCommand, ParsesVerdicts) {
  bool success = false;
  for (const char* yes : {"true", " TRUE\n", "1", "pass", "Pass", "{\"success\": true}"}) {
    EXPECT_TRUE(parse_verdict(yes, &success)) << yes;
    EXPECT_TRUE(success) << yes;
  }
  for (const char* no : {"false", "0\n", "FAIL", "{\"success\": false, \"reason\": \"x\"}"}) {
    EXPECT_TRUE(parse_verdict(no, &success)) << no;
    EXPECT_FALSE(success) << no;
  }
  for (const char* bad : {"", "yes", "2", "true false", "{\"success\": 1}", "[true]", "{}"})
    EXPECT_FALSE(parse_verdict(bad, &success)) << bad;
}

TEST(OracleCommand, GraderReadsTheCompletionAndFields) {
  testing::TempDir dir;
  // Succeeds when the JSON line holds the completion "42" and the field "answer": "42".
  const std::string grader = write_grader(
      dir, "grade.sh",
      "read line\ncase \"$line\" in *'\"answer\":\"42\"'*'\"completion\":\"42\"'*) echo true;;\n"
      "*) echo false;; esac\n");
  const auto oracle = command_oracle(grader);
  EXPECT_TRUE(oracle->grade("42", {{"answer", "42"}}));
  EXPECT_FALSE(oracle->grade("41", {{"answer", "42"}}));
  EXPECT_EQ(oracle->grade_all({"42", "7", "42"}, {{"answer", "42"}}),
            (std::vector<bool>{true, false, true}));
  EXPECT_EQ(oracle->name(), "command");
}

TEST(OracleCommand, AcceptsTrueFalseAndJsonGraders) {
  testing::TempDir dir;
  EXPECT_TRUE(command_oracle(write_grader(dir, "t.sh", "cat >/dev/null; echo true"))
                  ->grade("x", nlohmann::json::object()));
  EXPECT_FALSE(command_oracle(write_grader(dir, "f.sh", "echo false"))->grade("x", kNoFields));
  EXPECT_TRUE(command_oracle(write_grader(dir, "j.sh", "echo '{\"success\": true}'"))
                  ->grade("x", kNoFields));
  EXPECT_FALSE(
      command_oracle(write_grader(dir, "p.sh", "printf 'FAIL\\n\\n'"))->grade("x", kNoFields));
}

TEST(OracleCommand, BrokenGradersAreInputErrors) {
  testing::TempDir dir;
  const auto garbage = command_oracle(write_grader(dir, "g.sh", "echo 'maybe?'"));
  EXPECT_THAT(error_of([&] { garbage->grade("x", kNoFields); }),
              HasSubstr("g.sh`: expected true/false/1/0/pass/fail or {\"success\": bool} on "
                        "stdout, found \"maybe?\\n\""));
  const auto crash = command_oracle(write_grader(dir, "c.sh", "echo oops >&2; exit 2"));
  const std::string crash_error = error_of([&] { crash->grade("x", kNoFields); });
  EXPECT_THAT(crash_error,
              HasSubstr("oracle command `/bin/sh " + dir.file("c.sh") + "`: exit status 2"));
  EXPECT_THAT(crash_error, HasSubstr("stderr: \"oops\\n\""));
  const auto slow = command_oracle(write_grader(dir, "s.sh", "sleep 30; echo true"), 0.5);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THAT(error_of([&] { slow->grade("x", kNoFields); }), HasSubstr("timed out after 0.5"));
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3);
  EXPECT_THAT(error_of([&] {
                crash->grade_all({"a", "b", "c"}, kNoFields);
              }),
              HasSubstr("exit status 2"));
}

TEST(OracleCommand, ConfigErrors) {
  EXPECT_THAT(error_of([] {
                make_oracle({{"type", "command"}}, "pts.json");
              }),
              HasSubstr("pts.json: missing required key oracle.command"));
  EXPECT_THAT(
      error_of([] {
        make_oracle({{"type", "command"}, {"command", nlohmann::json::array()}}, "pts.json");
      }),
      HasSubstr("pts.json: oracle.command: expected a non-empty array"));
  EXPECT_THAT(error_of([] {
                make_oracle({{"type", "command"}, {"command", {"no-such-grader-xyz"}}}, "pts.json");
              }),
              HasSubstr("program \"no-such-grader-xyz\" not found on PATH"));
  EXPECT_THAT(error_of([] {
                make_oracle({{"type", "command"}, {"command", "sh grade.sh"}}, "pts.json");
              }),
              HasSubstr("pts.json: oracle.command: expected"));
  EXPECT_THAT(
      error_of([] {
        make_oracle({{"type", "command"}, {"command", {"sh"}}, {"timeout_s", 0}}, "pts.json");
      }),
      HasSubstr("oracle.timeout_s: expected seconds"));
}

}  // namespace
}  // namespace align
