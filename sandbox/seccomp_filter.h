// The seccomp-BPF program of run_subprocess's sandbox (subprocess.h lists what it denies).
// Built in the parent before fork (it allocates); patched and installed in the child, where only
// async-signal-safe calls are allowed.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <vector>

namespace align {

struct SeccompFilter {
  std::vector<sock_filter> program;
  std::vector<size_t> self_pid_slots;  // instructions whose k becomes the child's pid
};

// False on architectures the filter does not know (then the sandbox cannot run).
bool sandbox_filter_supported();

SeccompFilter build_sandbox_filter();

// In the child: writes getpid() into the pid slots, sets PR_SET_NO_NEW_PRIVS and installs the
// filter. Returns 0, or the errno of the failing call. Async-signal-safe.
int install_sandbox_filter(SeccompFilter& filter);

}  // namespace align
