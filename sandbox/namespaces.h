// Namespace isolation for untrusted programs, with bubblewrap (Debian `bubblewrap`, `bwrap`), the
// well-kept runner for exactly this. A program run this way:
//   - has its own user, PID, network, mount, IPC, UTS (and, where the kernel allows, cgroup)
//     namespaces: it sees no other process (its parent is outside its PID namespace, so no pid
//     it can name is align's), has no network interface but a down loopback, and no IPC objects
//     it could share;
//   - runs as uid/gid 65534 inside; when align runs as root the runner itself is started as
//     uid/gid 65534 (nobody) first, so outside the namespace it is an unprivileged user too;
//   - sees a file system of its own: /usr read-only (with the /bin, /lib, /lib64, /sbin links of
//     a merged-/usr system), a fresh /proc of its namespace, a minimal /dev, private tmpfs /tmp and
//     /dev/shm (gone when it exits), and its working directory, writable, at /work; nothing else
//     of the host (no /etc, /home, /root, /var, no align files);
//   - is in a new session (no terminal to inject into), dies with its parent, and gets the
//     syscall filter of seccomp_filter.h from the runner before it starts.
#pragma once

#include <string>
#include <vector>

namespace align {

// The directory the program's working directory appears at inside.
inline constexpr const char* kSandboxWorkDir = "/work";
// The uid/gid the program runs as (and the runner, when align is root).
inline constexpr unsigned kSandboxUid = 65534;

// bwrap's path ($ALIGN_BWRAP when set, else /usr/bin/bwrap, else PATH), or "" when there is none.
std::string find_bubblewrap();

// The runner's argv for `argv` (argv[0] a path under /usr) working in `host_cwd`, with the
// filter on descriptor `seccomp_fd`: bwrap <isolation flags> -- argv...
std::vector<std::string> namespace_argv(const std::string& bwrap, const std::string& host_cwd,
                                        int seccomp_fd, const std::vector<std::string>& argv);

// Whether isolation works on this machine: runs /usr/bin/true that way once per process and
// bubblewrap path (cached).
// Returns "" when it does, else why not (bubblewrap missing, user namespaces disabled, ...).
std::string namespace_isolation_problem();

}  // namespace align
