// Running a program with a time limit, its own process group and captured output; optionally in
// a sandbox for untrusted code (the code oracle).
//
// run_subprocess(request):
//   - fork + execve of request.argv (argv[0] must be a path: find_program() resolves names); the
//     child gets its own process group, cwd = request.cwd (inherited when empty), exactly
//     request.env as its environment, stdin = request.stdin_data (a memfd) or /dev/null,
//     stdout/stderr = pipes drained by the caller's thread, every other descriptor closed, all
//     signals unblocked and at their default action, SIGKILL when the calling thread exits.
//   - Wall clock: after timeout_s the whole process group gets SIGKILL (timed_out). The group is
//     also killed once the child exits (stray background processes) and when stdout + stderr pass
//     kill_after_output_bytes (output_overflow). The first output_limit bytes of each stream are
//     kept. The child is always reaped before returning.
//   - sandbox = true adds: setrlimit CPU (timeout_s + 1 s), address space (memory_mb), file size
//     (file_size_mb), open files (max_open_files), core dumps off; PR_SET_NO_NEW_PRIVS; and the
//     libseccomp filter of seccomp_filter.cc, under which these fail with EPERM: sockets (no
//     network, no UNIX sockets) and io_uring; fork, vfork and clone without CLONE_THREAD (no new
//     processes; threads are allowed; clone3 reports ENOSYS so libc falls back to clone); ptrace,
//     process_vm_*, pidfd_*, kcmp, tkill; setpgid, setsid, the TIOCSTI ioctl; namespaces, mounts,
//     keys, bpf, perf, modules and other administration; and, unless the program has its own PID
//     namespace, kill/tgkill/rt_sigqueueinfo to anyone but itself, prlimit64, setpriority and
//     sched_set* on anyone but itself. A system call through another ABI (i386 int 0x80, x32)
//     kills the child.
//   - isolation = kNamespaces (with sandbox) runs the program through bubblewrap in its own
//     namespaces, as an unprivileged user, seeing only /usr (read-only), private /tmp and
//     /dev/shm, and request.cwd (required, writable) at /work (namespaces.h says exactly what);
//     its limits are set on the runner and the filter is installed right before it starts.
//   - isolation = kNone with sandbox leaves the file system and other processes' files open:
//     the child can read and write whatever the user running align can.
// Throws IoError when the child cannot be started (pipe, fork, chdir or exec failure).
// Safe to call from several threads at once.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace align {

enum class Isolation { kNone, kNamespaces };

struct SubprocessRequest {
  std::vector<std::string> argv;  // argv[0]: the program's path
  std::string stdin_data;
  std::string cwd;               // empty: the caller's
  std::vector<std::string> env;  // "KEY=value"; the child's whole environment
  double timeout_s = 10;
  size_t output_limit = 64 << 10;              // bytes kept per stream
  size_t kill_after_output_bytes = 16u << 20;  // stdout + stderr
  bool sandbox = false;
  Isolation isolation = Isolation::kNone;  // kNamespaces needs sandbox and cwd
  size_t memory_mb = 512;
  size_t file_size_mb = 16;
  int max_open_files = 64;
};

struct SubprocessResult {
  int exit_code = -1;  // when the child exited normally, else -1
  int signal = 0;      // the signal that ended it, else 0
  bool timed_out = false;
  bool output_overflow = false;
  std::string out, err;  // the first output_limit bytes of each
  double wall_s = 0;
  bool succeeded() const { return exit_code == 0 && !timed_out && !output_overflow; }
  // "exit status 1", "killed by signal 9 (timed out after 10 s)", ... for messages.
  std::string describe() const;
};

SubprocessResult run_subprocess(const SubprocessRequest& request);

// `name` itself when it contains a '/', else the first executable PATH entry holding it; "" when
// none is found.
std::string find_program(const std::string& name);

// A fresh directory under the system temp dir, align-oracle-<pid>-XXXXXX, removed with its
// contents on destruction. The first one a process makes also removes those left by processes
// that no longer run (a killed run).
class ScratchDir {
 public:
  ScratchDir();  // throws IoError
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace align
