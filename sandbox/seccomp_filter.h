// The system-call filter of run_subprocess's sandbox (subprocess.h lists what it denies), written
// with libseccomp and exported as a BPF program. Built in the parent before fork (it allocates);
// installed in the child, where only async-signal-safe calls are allowed, or handed to
// bubblewrap as a file descriptor (--seccomp FD) when the program runs in its own namespaces.
#pragma once

#include <linux/filter.h>

#include <cstddef>
#include <vector>

namespace align {

struct SeccompFilter {
  std::vector<sock_filter> program;
  // Instructions that compare a syscall argument with the child's own pid (kill, tgkill,
  // rt_sigqueueinfo: a process outside a PID namespace may signal only itself); the child writes
  // its pid into them before installing.
  std::vector<size_t> self_pid_slots;
};

// The filter. `own_pid_namespace`: the program runs as the only process of its own PID
// namespace, which already keeps its signals, priorities and limits from reaching anyone else,
// so those calls need no pid rule (and the filter can be installed by another program).
// Throws Error when libseccomp cannot build or export it.
SeccompFilter build_sandbox_filter(bool own_pid_namespace);

// In the child: writes getpid() into the pid slots, sets PR_SET_NO_NEW_PRIVS and installs the
// filter. Returns 0, or the errno of the failing call. Async-signal-safe.
int install_sandbox_filter(SeccompFilter& filter);

// The program as bytes in a memfd positioned at 0 (close-on-exec), for bubblewrap's --seccomp.
// The filter must have no pid slots. Throws IoError.
int sandbox_filter_memfd(const SeccompFilter& filter);

}  // namespace align
