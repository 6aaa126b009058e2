#include "sandbox/subprocess_child.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "sandbox/namespaces.h"

namespace align {
namespace {

enum Step : int { kSetup = 1, kChdir, kLimits, kFilter, kUser, kExec };

[[noreturn]] void child_fail(int report_fd, int step, int error) {
  const int message[2] = {step, error};
  ssize_t ignored = ::write(report_fd, message, sizeof message);
  (void)ignored;
  _exit(127);
}

void close_from(unsigned first, unsigned last) {
#ifdef SYS_close_range
  if (syscall(SYS_close_range, first, last, 0) == 0) return;
#endif
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  const unsigned cap = limit.rlim_cur > 65536 ? 65536 : static_cast<unsigned>(limit.rlim_cur);
  for (unsigned fd = first; fd <= last && fd < cap; ++fd)
    ::close(static_cast<int>(fd));
}

bool set_limit(int resource, rlim_t value) {
  const rlimit limit{value, value};
  return setrlimit(resource, &limit) == 0;
}

bool apply_limits(const SubprocessRequest& r) {
  const rlim_t mb = 1024 * 1024;
  return set_limit(RLIMIT_CPU, static_cast<rlim_t>(r.timeout_s) + 1) &&
         set_limit(RLIMIT_AS, static_cast<rlim_t>(r.memory_mb) * mb) &&
         set_limit(RLIMIT_FSIZE, static_cast<rlim_t>(r.file_size_mb) * mb) &&
         set_limit(RLIMIT_NOFILE, static_cast<rlim_t>(r.max_open_files)) &&
         set_limit(RLIMIT_CORE, 0);
}

}  // namespace

// Runs in the forked child: async-signal-safe calls only.
[[noreturn]] void run_child(const ChildPlan& plan) {
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGKILL);
  // Move everything above 2 first, so the dup2 calls below cannot clobber a source.
  const int report = fcntl(plan.report_fd, F_DUPFD_CLOEXEC, 10);
  const int in = fcntl(plan.stdin_fd, F_DUPFD, 10);
  const int out = fcntl(plan.out_fd, F_DUPFD, 10);
  const int err = fcntl(plan.err_fd, F_DUPFD, 10);
  const int filter_fd = plan.seccomp_fd >= 0 ? fcntl(plan.seccomp_fd, F_DUPFD, 10) : -1;
  if (report < 0) _exit(127);
  if (in < 0 || out < 0 || err < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
    child_fail(report, kSetup, errno);
  unsigned first_closed = 3;
  if (plan.seccomp_fd >= 0) {
    if (filter_fd < 0 || dup2(filter_fd, kChildSeccompFd) != kChildSeccompFd)
      child_fail(report, kSetup, errno);
    first_closed = kChildSeccompFd + 1;
  }
  close_from(first_closed, static_cast<unsigned>(report) - 1);
  close_from(static_cast<unsigned>(report) + 1, ~0u);
  const SubprocessRequest& r = *plan.request;
  if (!r.cwd.empty() && chdir(r.cwd.c_str()) != 0) child_fail(report, kChdir, errno);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction action {};
  action.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig)
    sigaction(sig, &action, nullptr);
  if (r.sandbox) {
    if (!apply_limits(r)) child_fail(report, kLimits, errno);
    if (plan.filter) {
      if (const int error = install_sandbox_filter(*plan.filter))
        child_fail(report, kFilter, error);
    } else if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
      child_fail(report, kFilter, errno);
    }
  }
  if (plan.drop_to_sandbox_user) {
    const gid_t id = kSandboxUid;
    if (setgroups(0, nullptr) != 0 || setresgid(id, id, id) != 0 || setresuid(id, id, id) != 0)
      child_fail(report, kUser, errno);
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // a credential change clears it
  }
  execve(plan.argv[0], plan.argv, plan.envp);
  child_fail(report, kExec, errno);
}

const char* child_step_name(int step) {
  switch (step) {
    case kChdir:
      return "chdir";
    case kLimits:
      return "setrlimit";
    case kFilter:
      return "seccomp";
    case kUser:
      return "setuid to the sandbox user";
    case kExec:
      return "exec";
    default:
      return "setup";
  }
}

}  // namespace align
