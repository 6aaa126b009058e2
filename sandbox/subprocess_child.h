// The forked child's side of run_subprocess (subprocess.h): what happens between fork and
// execve. Everything here is async-signal-safe (the parent may have other threads holding locks):
// the plan is built before fork, and the child only makes system calls.
#pragma once

#include "sandbox/seccomp_filter.h"
#include "sandbox/subprocess.h"

namespace align {

// Everything the child needs, prepared before fork.
struct ChildPlan {
  const SubprocessRequest* request;
  char* const* argv;
  char* const* envp;
  int stdin_fd, out_fd, err_fd, report_fd;  // report_fd: CLOEXEC pipe for setup failures
  SeccompFilter* filter;                    // null without sandbox
};

// Sets up the process group, descriptors, cwd, signals and (sandbox) limits and filter, then
// execs. On failure writes {step, errno} (two ints) to report_fd and exits with status 127.
[[noreturn]] void run_child(const ChildPlan& plan);

// "chdir", "exec", ... for a step number read from the report pipe.
const char* child_step_name(int step);

}  // namespace align
