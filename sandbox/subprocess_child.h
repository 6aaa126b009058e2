// The forked child's side of run_subprocess (subprocess.h): what happens between fork and
// execve. Everything here is async-signal-safe (the parent may have other threads holding locks):
// the plan is built before fork, and the child only makes system calls.
#pragma once

#include "sandbox/seccomp_filter.h"
#include "sandbox/subprocess.h"

namespace align {

// The descriptor a namespace runner (bubblewrap) reads the syscall filter from.
inline constexpr int kChildSeccompFd = 3;

// Everything the child needs, prepared before fork.
struct ChildPlan {
  const SubprocessRequest* request;
  char* const* argv;
  char* const* envp;
  int stdin_fd, out_fd, err_fd, report_fd;  // report_fd: CLOEXEC pipe for setup failures
  SeccompFilter* filter;  // installed in the child itself; null without sandbox or when isolated
  int seccomp_fd;         // >= 0: handed to the runner as kChildSeccompFd
  bool drop_to_sandbox_user;  // become uid/gid 65534 before exec (align runs as root)
};

// Sets up the process group, descriptors, cwd, signals and (sandbox) limits and filter, then
// execs. On failure writes {step, errno} (two ints) to report_fd and exits with status 127.
[[noreturn]] void run_child(const ChildPlan& plan);

// "chdir", "exec", ... for a step number read from the report pipe.
const char* child_step_name(int step);

}  // namespace align
