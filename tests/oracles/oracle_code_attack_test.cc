// Hostile candidate programs against the code oracle's namespace sandbox, one test per attack
// class: each program exits 0 only when its attack worked, so a safe sandbox grades it false,
// and the test also checks in this process (the one the attack aims at) that nothing happened.
// The attacks get this process's real pid, as if the attacker had learned it.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>

#include "oracles/code_oracle.h"
#include "oracles/oracle.h"
#include "sandbox/namespaces.h"
#include "tests/test_util.h"

namespace align {
namespace {

std::atomic<int> g_usr1{0};
void on_usr1(int) {
  g_usr1.fetch_add(1);
}

class CodeAttack : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!namespace_isolation_problem().empty())
      GTEST_SKIP() << "no namespace sandbox here: " << namespace_isolation_problem();
    oracle_ = make_oracle({{"type", "code"}, {"timeout_s", 5}}, "attack.json");
    struct sigaction action {};
    action.sa_handler = on_usr1;
    sigaction(SIGUSR1, &action, &old_usr1_);
    g_usr1 = 0;
  }
  void TearDown() override {
    if (oracle_) sigaction(SIGUSR1, &old_usr1_, nullptr);
  }
  // The program with PID replaced by this process's pid; true when it exited 0 (attack worked).
  bool attack(std::string program) {
    const std::string pid = std::to_string(::getpid());
    for (size_t at; (at = program.find("PID")) != std::string::npos;)
      program.replace(at, 3, pid);
    return oracle_->grade(program, {{"tests", ""}});
  }
  std::unique_ptr<Oracle> oracle_;
  struct sigaction old_usr1_ {};
};

TEST_F(CodeAttack, CannotSeeOtherProcesses) {
  EXPECT_FALSE(attack("import os\nassert os.path.exists('/proc/PID')"));
  // Only the sandbox's own processes exist in its /proc: its init and itself.
  EXPECT_FALSE(
      attack("import os\npids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
             "assert len(pids) > 2, pids"));
  // Its parent is the sandbox's init, not align.
  EXPECT_FALSE(attack("import os\nassert os.getppid() != 1"));
}

TEST_F(CodeAttack, PidfdSignalsDoNotReachTheParent) {
  EXPECT_FALSE(
      attack("import os, signal\nfd = os.pidfd_open(PID)\n"
             "signal.pidfd_send_signal(fd, signal.SIGKILL)"));
  EXPECT_FALSE(
      attack("import os, signal\nfd = os.pidfd_open(os.getppid())\n"
             "signal.pidfd_send_signal(fd, signal.SIGSTOP)"));
  EXPECT_FALSE(
      attack("import os, signal\nfd = os.pidfd_open(PID)\n"
             "signal.pidfd_send_signal(fd, signal.SIGSTOP)"));
  EXPECT_TRUE(attack("print('still here')"));  // this process was neither killed nor stopped
}

TEST_F(CodeAttack, QueuedSignalsDoNotReachTheParent) {
  // rt_sigqueueinfo(pid, SIGUSR1, &info) through the raw system call, and plain kill.
  EXPECT_FALSE(
      attack("import ctypes, signal\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             "info = (ctypes.c_char * 128)()\n"
             "info[8:12] = (-1).to_bytes(4, 'little', signed=True)  # SI_QUEUE\n"
             "assert libc.syscall(129, PID, int(signal.SIGUSR1), info) == 0"));
  EXPECT_FALSE(attack("import os, signal\nos.kill(PID, signal.SIGUSR1)"));
  EXPECT_EQ(g_usr1.load(), 0);
}

TEST_F(CodeAttack, CannotChangeTheParentsLimitsOrPriority) {
  rlimit before{};
  getrlimit(RLIMIT_FSIZE, &before);
  errno = 0;
  const int nice_before = getpriority(PRIO_PROCESS, 0);
  EXPECT_FALSE(attack("import resource\nresource.prlimit(PID, resource.RLIMIT_FSIZE, (1, 1))"));
  EXPECT_FALSE(attack("import os\nos.setpriority(os.PRIO_PROCESS, PID, 19)"));
  rlimit after{};
  getrlimit(RLIMIT_FSIZE, &after);
  EXPECT_EQ(after.rlim_cur, before.rlim_cur);
  EXPECT_EQ(getpriority(PRIO_PROCESS, 0), nice_before);
  // And this process can still write files (no RLIMIT_FSIZE of 1 byte, no SIGXFSZ).
  testing::TempDir dir;
  std::ofstream(dir.file("f")) << std::string(4096, 'x');
  EXPECT_EQ(std::filesystem::file_size(dir.file("f")), 4096u);
}

TEST_F(CodeAttack, CannotReadOrWriteTheParentsProcFiles) {
  EXPECT_FALSE(attack("f = open('/proc/PID/mem', 'r+b')"));
  EXPECT_FALSE(attack("assert b'=' in open('/proc/PID/environ', 'rb').read()"));
  EXPECT_FALSE(attack("open('/proc/PID/fd/2', 'w').write('owned')"));
  // Nor does the program inherit align's environment: only what the oracle sets (and bwrap's PWD).
  EXPECT_FALSE(attack("import os\nassert set(os.environ) - {'PATH', 'HOME', 'LANG', 'PWD'}"));
}

TEST_F(CodeAttack, SeesNoHostFilesAndWritesOnlyItsScratchDir) {
  testing::TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  const std::string host_file = dir.file("pwned");
  EXPECT_FALSE(attack("print(open('/etc/shadow').read())"));
  EXPECT_FALSE(attack("print(open('/etc/passwd').read())"));
  EXPECT_FALSE(attack("open('" + host_file + "', 'w').write('x')"));
  EXPECT_FALSE(attack("open('/usr/pwned', 'w').write('x')"));
  EXPECT_FALSE(std::filesystem::exists(host_file));
  EXPECT_FALSE(std::filesystem::exists("/usr/pwned"));
  // What it may do: write its own directory and a private /tmp.
  EXPECT_TRUE(attack("open('out.txt', 'w').write('x')\nopen('/tmp/t', 'w').write('y')"));
  // It is not root: it runs as the sandbox user.
  EXPECT_FALSE(attack("import os\nassert os.getuid() == 0"));
}

TEST_F(CodeAttack, LeavesNothingInSharedMemory) {
  const std::string name = "align-attack-" + std::to_string(::getpid());
  EXPECT_TRUE(attack("open('/dev/shm/" + name + "', 'w').write('left behind')"));
  EXPECT_FALSE(std::filesystem::exists("/dev/shm/" + name));
}

TEST_F(CodeAttack, HasNoNetworkEvenWithoutTheFilter) {
  // The filter denies sockets; the network namespace has no interface to reach anyway.
  EXPECT_FALSE(attack("import os\nassert os.listdir('/sys/class/net') != ['lo']"));
  EXPECT_FALSE(attack("import socket\nsocket.create_connection(('127.0.0.1', 22), 1)"));
}

TEST(CodeSandbox, RefusesWithoutNamespacesUnlessTheConfigSaysNone) {
  ::setenv("ALIGN_BWRAP", "/nonexistent/bwrap", 1);
  try {
    make_oracle({{"type", "code"}}, "code.json");
    ADD_FAILURE() << "expected an InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("code.json: oracle.sandbox"), std::string::npos) << what;
    EXPECT_NE(what.find("ALIGN_BWRAP=/nonexistent/bwrap is not executable"), std::string::npos)
        << what;
    EXPECT_NE(what.find("\"none\""), std::string::npos) << what;
  }
  // "none" runs, with the limits and the filter only.
  const auto oracle = make_oracle({{"type", "code"}, {"sandbox", "none"}}, "code.json");
  EXPECT_TRUE(oracle->grade("print(1)", {{"tests", "assert 1 + 1 == 2"}}));
  EXPECT_FALSE(oracle->grade("import os\nos.fork()", {{"tests", ""}}));
  // What "none" gives up, and what the attack tests above would catch: the program reads this
  // process's environment.
  EXPECT_TRUE(oracle->grade(
      "assert b'=' in open('/proc/" + std::to_string(::getpid()) + "/environ', 'rb').read()",
      {{"tests", ""}}));
  ::unsetenv("ALIGN_BWRAP");
  EXPECT_THROW(make_oracle({{"type", "code"}, {"sandbox", "docker"}}, "code.json"), InputError);
}

}  // namespace
}  // namespace align
