// The code oracle and its sandbox: correct and wrong programs, code extraction, and hostile
// completions (infinite loop, fork bomb, memory blow-up, sockets, huge files, huge output,
// killing the parent) that must fail fast without harming the test process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "oracles/answer_extraction.h"
#include "oracles/code_oracle.h"
#include "oracles/oracle.h"
#include "sandbox/subprocess.h"
#include "tests/test_util.h"

namespace align {
namespace {

std::unique_ptr<Oracle> code_oracle(double timeout_s = 10) {
  const nlohmann::json config = {{"type", "code"}, {"timeout_s", timeout_s}};
  return make_oracle(config, "test.json");
}

const nlohmann::json kAddTests = {{"tests", "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"}};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Points TMPDIR at a private folder while alive, so a test counts only its own scratch
// directories (other tests grade code in parallel). Searchable by others like /tmp, so that the
// sandbox user can reach the scratch directories when the tests run as root.
class PrivateTmpDir {
 public:
  PrivateTmpDir() {
    std::filesystem::permissions(dir_.path(), std::filesystem::perms::others_exec,
                                 std::filesystem::perm_options::add);
    const char* old = std::getenv("TMPDIR");
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv("TMPDIR", dir_.path().c_str(), 1);
  }
  ~PrivateTmpDir() {
    if (had_) {
      ::setenv("TMPDIR", old_.c_str(), 1);
    } else {
      ::unsetenv("TMPDIR");
    }
  }

 private:
  testing::TempDir dir_;
  std::string old_;
  bool had_ = false;
};

// Scratch directories of the code oracle now in the temp dir.
size_t scratch_dirs() {
  size_t count = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(std::filesystem::temp_directory_path())) {
    count += entry.path().filename().string().rfind("align-oracle-", 0) == 0;
  }
  return count;
}

TEST(OracleCode, ExtractsTheLastPythonBlock) {
  EXPECT_EQ(extract_code("text\n```python\ndef f():\n    return 1\n```\nmore"),
            "def f():\n    return 1\n");
  EXPECT_EQ(extract_code("```python\nold\n```\n```py\nnew\n```\n```text\nout\n```"), "new\n");
  EXPECT_EQ(extract_code("```\nplain\n```"), "plain\n");
  EXPECT_EQ(extract_code("def f(): pass"), "def f(): pass");
  EXPECT_EQ(extract_code("```python\ntruncated = 1"), "truncated = 1\n");
}

TEST(OracleCode, PassesCorrectAndFailsWrongPrograms) {
  const auto oracle = code_oracle();
  EXPECT_TRUE(oracle->grade("```python\ndef add(a, b):\n    return a + b\n```", kAddTests));
  EXPECT_FALSE(oracle->grade("```python\ndef add(a, b):\n    return a - b\n```", kAddTests));
  EXPECT_FALSE(oracle->grade("def add(a, b) return a + b", kAddTests));  // syntax error
  EXPECT_FALSE(oracle->grade("I don't know how to do this.", kAddTests));
  EXPECT_FALSE(oracle->grade("import sys\nsys.exit(3)", {{"tests", ""}}));
  const nlohmann::json lines = {{"tests", {"assert add(1, 1) == 2", "assert add(0, 0) == 0"}}};
  EXPECT_TRUE(oracle->grade("def add(a, b):\n    return a + b", lines));
}

TEST(OracleCode, GradeAllRunsInParallelAndKeepsOrder) {
  const auto oracle = code_oracle();
  const std::vector<std::string> completions = {
      "def add(a, b):\n    return a + b", "def add(a, b):\n    return a * b",
      "def add(a, b):\n    return sum([a, b])", "while True: pass",
      "def add(a, b):\n    return b + a"};
  const auto oracle_fast = code_oracle(2);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(oracle_fast->grade_all(completions, kAddTests),
            (std::vector<bool>{true, false, true, false, true}));
  EXPECT_LT(seconds_since(start), 8);
}

TEST(OracleCode, InfiniteLoopTimesOut) {
  const auto oracle = code_oracle(1);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(oracle->grade("while True:\n    pass", {{"tests", ""}}));
  EXPECT_LT(seconds_since(start), 4);
  EXPECT_FALSE(oracle->grade("import time\ntime.sleep(100)", {{"tests", ""}}));
  EXPECT_LT(seconds_since(start), 8);
}

TEST(OracleCode, ForkBombCannotCreateProcesses) {
  const auto oracle = code_oracle(3);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(oracle->grade("import os\nwhile True:\n    os.fork()", {{"tests", ""}}));
  // fork fails with EPERM: the program sees PermissionError.
  EXPECT_TRUE(
      oracle->grade("import os\ntry:\n    os.fork()\nexcept PermissionError:\n    pass\n"
                    "else:\n    raise SystemExit(1)",
                    {{"tests", ""}}));
  EXPECT_FALSE(
      oracle->grade("import subprocess\nsubprocess.run(['true'], check=True)", {{"tests", ""}}));
  // Threads still work.
  EXPECT_TRUE(
      oracle->grade("import threading\nt = threading.Thread(target=lambda: None)\n"
                    "t.start()\nt.join()",
                    {{"tests", ""}}));
  EXPECT_LT(seconds_since(start), 8);
}

TEST(OracleCode, MemoryBlowUpFailsCleanly) {
  const auto oracle = code_oracle(10);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(oracle->grade("a = []\nwhile True:\n    a.append(' ' * 10**6)", {{"tests", ""}}));
  EXPECT_FALSE(oracle->grade("x = bytearray(2 * 1024**3)", {{"tests", ""}}));
  EXPECT_LT(seconds_since(start), 8);
}

TEST(OracleCode, NoNetwork) {
  const auto oracle = code_oracle(5);
  EXPECT_FALSE(oracle->grade("import socket\ns = socket.socket()\ns.connect(('127.0.0.1', 80))",
                             {{"tests", ""}}));
  EXPECT_TRUE(
      oracle->grade("import socket\ntry:\n    socket.socket(socket.AF_INET)\n"
                    "except PermissionError:\n    pass\nelse:\n    raise SystemExit(1)",
                    {{"tests", ""}}));
  EXPECT_TRUE(
      oracle->grade("import socket\ntry:\n    socket.socket(socket.AF_UNIX)\n"
                    "except PermissionError:\n    pass\nelse:\n    raise SystemExit(1)",
                    {{"tests", ""}}));
}

TEST(OracleCode, HugeFilesAndOutputFailFast) {
  const auto oracle = code_oracle(10);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(
      oracle->grade("with open('big', 'wb') as f:\n    while True:\n"
                    "        f.write(b'x' * 2**20)",
                    {{"tests", ""}}));
  EXPECT_FALSE(
      oracle->grade("import sys\nwhile True:\n    sys.stdout.write('y' * 65536)", {{"tests", ""}}));
  EXPECT_FALSE(oracle->grade("print('z' * 10**9)", {{"tests", ""}}));
  EXPECT_LT(seconds_since(start), 8);
}

TEST(OracleCode, CannotSignalTheParentAndLeavesNoFiles) {
  PrivateTmpDir tmp;
  const auto oracle = code_oracle(5);
  const size_t before = scratch_dirs();
  // Its parent is the sandbox's init (which ignores the signal), never this process.
  oracle->grade("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", {{"tests", ""}});
  oracle->grade("import os, signal\nos.killpg(os.getpgid(os.getppid()), 9)", {{"tests", ""}});
  oracle->grade("import os, signal\nos.kill(-1, 9)", {{"tests", ""}});
  EXPECT_TRUE(
      oracle->grade("import os, signal\nsignal.signal(signal.SIGUSR1, lambda *a: None)\n"
                    "os.kill(os.getpid(), signal.SIGUSR1)",
                    {{"tests", ""}}));
  EXPECT_EQ(scratch_dirs(), before);  // the scratch directories are gone
}

TEST(OracleCode, ConfigAndFieldErrors) {
  EXPECT_THROW(make_oracle({{"type", "code"}, {"language", "rust"}}, "c.json"), InputError);
  EXPECT_THROW(make_oracle({{"type", "code"}, {"timeout_s", -1}}, "c.json"), InputError);
  EXPECT_THROW(make_oracle({{"type", "code"}, {"timeout", 5}}, "c.json"), InputError);
  const auto oracle = code_oracle();
  EXPECT_THROW(oracle->check_fields({{"tests", 5}}, "code.jsonl:1"), InputError);
  EXPECT_THROW(oracle->check_fields({{"tests", {"ok", 3}}}, "code.jsonl:1"), InputError);
  EXPECT_THROW(oracle->grade("x", nlohmann::json::object()), InputError);
}

}  // namespace
}  // namespace align
