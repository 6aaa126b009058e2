// run_subprocess: output capture, exit status, stdin, timeouts that kill the whole process group,
// and the sandbox's limits seen directly in the result (signal, overflow, error text).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "common/error.h"
#include "oracles/code_oracle.h"  // find_python3
#include "sandbox/subprocess.h"

namespace align {
namespace {

using ::testing::HasSubstr;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// `python3 -I -S -c code` in the sandbox.
SubprocessResult sandboxed_python(const std::string& code, double timeout_s = 5) {
  SubprocessRequest request;
  request.argv = {find_python3(), "-I", "-S", "-c", code};
  request.env = {"PATH=/usr/bin:/bin", "LANG=C.UTF-8"};
  request.timeout_s = timeout_s;
  request.sandbox = true;
  const ScratchDir dir;
  request.cwd = dir.path();
  return run_subprocess(request);
}

TEST(Subprocess, CapturesOutputExitStatusAndStdin) {
  SubprocessRequest request;
  request.argv = {find_program("sh"), "-c", "cat; echo err >&2; exit 3"};
  request.stdin_data = "hello\n";
  const SubprocessResult result = run_subprocess(request);
  EXPECT_EQ(result.exit_code, 3);
  EXPECT_EQ(result.out, "hello\n");
  EXPECT_EQ(result.err, "err\n");
  EXPECT_FALSE(result.timed_out);
  EXPECT_EQ(result.describe(), "exit status 3");
}

TEST(Subprocess, TimeoutKillsTheWholeGroup) {
  SubprocessRequest request;
  request.argv = {find_program("sh"), "-c", "sleep 30 & sleep 30; echo never"};
  request.timeout_s = 0.5;
  const auto start = std::chrono::steady_clock::now();
  const SubprocessResult result = run_subprocess(request);
  EXPECT_TRUE(result.timed_out);
  EXPECT_EQ(result.signal, 9);
  EXPECT_LT(seconds_since(start), 3);
}

TEST(Subprocess, MissingProgramIsAnIoError) {
  SubprocessRequest request;
  request.argv = {"/nonexistent/program"};
  EXPECT_THROW(run_subprocess(request), IoError);
  EXPECT_EQ(find_program("definitely-not-a-program-xyz"), "");
  EXPECT_NE(find_program("sh"), "");
}

TEST(Subprocess, SandboxAllowsOrdinaryPrograms) {
  const SubprocessResult result = sandboxed_python("print(sum(range(10)))");
  EXPECT_TRUE(result.succeeded()) << result.describe() << result.err;
  EXPECT_EQ(result.out, "45\n");
}

TEST(Subprocess, SandboxDeniesSocketsAndProcesses) {
  const SubprocessResult socket = sandboxed_python("import socket\nsocket.socket()");
  EXPECT_EQ(socket.exit_code, 1);
  EXPECT_THAT(socket.err, HasSubstr("PermissionError"));
  const SubprocessResult fork = sandboxed_python("import os\nos.fork()");
  EXPECT_EQ(fork.exit_code, 1);
  EXPECT_THAT(fork.err, HasSubstr("PermissionError"));
  const SubprocessResult group = sandboxed_python("import os\nos.setpgid(0, 0)");
  EXPECT_THAT(group.err, HasSubstr("PermissionError"));
  const SubprocessResult kill = sandboxed_python("import os\nos.kill(os.getppid(), 9)");
  EXPECT_EQ(kill.exit_code, 1);
  EXPECT_THAT(kill.err, HasSubstr("PermissionError"));
}

TEST(Subprocess, SandboxLimitsMemoryFilesAndOutput) {
  const auto start = std::chrono::steady_clock::now();
  const SubprocessResult memory =
      sandboxed_python("a = []\nwhile True:\n    a.append('x' * 10**6)");
  EXPECT_EQ(memory.exit_code, 1);
  EXPECT_THAT(memory.err, HasSubstr("MemoryError"));
  const SubprocessResult file = sandboxed_python(
      "with open('big', 'wb') as f:\n    while True:\n        f.write(b'x' * 4096)");
  // Python ignores SIGXFSZ, so the write fails with EFBIG instead of the signal killing it.
  EXPECT_EQ(file.exit_code, 1) << file.describe();
  EXPECT_THAT(file.err, HasSubstr("File too large"));
  const SubprocessResult output =
      sandboxed_python("import sys\nwhile True:\n    sys.stdout.write('y' * 65536)");
  EXPECT_TRUE(output.output_overflow) << output.describe();
  EXPECT_EQ(output.out.size(), SubprocessRequest().output_limit);
  EXPECT_LT(seconds_since(start), 5);
}

TEST(Subprocess, ScratchDirIsRemovedEvenWhenLockedDown) {
  std::string path;
  {
    const ScratchDir dir;
    path = dir.path();
    const SubprocessResult result = sandboxed_python(
        "import os\nos.makedirs('" + path + "/a/b')\nopen('" + path +
        "/a/b/f', 'w').write('x')\nos.chmod('" + path + "/a/b', 0)\nos.chmod('" + path + "/a', 0)");
    EXPECT_TRUE(result.succeeded()) << result.err;
  }
  EXPECT_FALSE(std::filesystem::exists(path));
}

TEST(Subprocess, SandboxTimesOutBusyLoops) {
  const auto start = std::chrono::steady_clock::now();
  const SubprocessResult busy = sandboxed_python("while True:\n    pass", 0.5);
  EXPECT_TRUE(busy.timed_out);
  EXPECT_FALSE(busy.succeeded());
  EXPECT_LT(seconds_since(start), 2);
}

// The first scratch dir a process makes removes those a killed process left (align-oracle-<pid>-*
// of a pid that does not run), not those of live processes. (Each ctest entry is its own
// process, so this one's first ScratchDir is made here.)
TEST(Subprocess, ScratchDirsOfDeadProcessesAreRemoved) {
  namespace fs = std::filesystem;
  const fs::path tmp = fs::temp_directory_path();
  const fs::path dead = tmp / "align-oracle-4194999-stale";
  const fs::path live = tmp / ("align-oracle-" + std::to_string(::getppid()) + "-live");
  fs::create_directories(dead / "sub");
  fs::create_directories(live);
  { const ScratchDir first; }
  EXPECT_FALSE(fs::exists(dead));
  EXPECT_TRUE(fs::exists(live));
  fs::remove_all(live);
}

}  // namespace
}  // namespace align
