#include "sandbox/seccomp_filter.h"

#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>

#include "common/error.h"

namespace align {
namespace {

// Stands for the child's pid while the filter is built; no real pid is this large by default
// (pid_max is at most 2^22), and the child patches it.
constexpr uint32_t kPidPlaceholder = 0x7e57ab1e;

struct Context {
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  ~Context() {
    if (ctx) seccomp_release(ctx);
  }
};

void add(scmp_filter_ctx ctx, uint32_t action, int nr, std::initializer_list<scmp_arg_cmp> args,
         const char* name) {
  if (nr == __NR_SCMP_ERROR) return;  // not a system call of this architecture
  const int rc = seccomp_rule_add_array(ctx, action, nr, static_cast<unsigned>(args.size()),
                                        args.size() ? args.begin() : nullptr);
  if (rc != 0)
    throw Error(std::string("seccomp: cannot add the rule for ") + name + ": " +
                std::strerror(-rc));
}

#define ALIGN_DENY(ctx, call, ...) \
  add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(call), {__VA_ARGS__}, #call)

}  // namespace

SeccompFilter build_sandbox_filter(bool own_pid_namespace) {
  Context c;
  if (!c.ctx) throw Error("seccomp: seccomp_init failed");
  scmp_filter_ctx ctx = c.ctx;
  // Another ABI (i386 through int 0x80, x32) kills the process; NO_NEW_PRIVS is ours to set.
  seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);

  // No network, no UNIX sockets, no asynchronous rings that bypass the filter.
  ALIGN_DENY(ctx, socket);
  ALIGN_DENY(ctx, socketpair);
  ALIGN_DENY(ctx, io_uring_setup);
  ALIGN_DENY(ctx, io_uring_enter);
  ALIGN_DENY(ctx, io_uring_register);
  // No new processes (threads are allowed); clone3 reports ENOSYS so libc falls back to clone.
  ALIGN_DENY(ctx, fork);
  ALIGN_DENY(ctx, vfork);
  ALIGN_DENY(ctx, clone, SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0));
  add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), {}, "clone3");
  // Nothing that reaches into another process.
  for (int nr : {SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev),
                 SCMP_SYS(pidfd_open), SCMP_SYS(pidfd_send_signal), SCMP_SYS(pidfd_getfd),
                 SCMP_SYS(process_madvise), SCMP_SYS(kcmp), SCMP_SYS(tkill)})
    add(ctx, SCMP_ACT_ERRNO(EPERM), nr, {}, "process access");
  // Its own session and group stay; no terminal injection.
  ALIGN_DENY(ctx, setpgid);
  ALIGN_DENY(ctx, setsid);
  ALIGN_DENY(ctx, ioctl, SCMP_A1(SCMP_CMP_EQ, TIOCSTI));
  // No namespaces, mounts, keys, BPF, perf, kernel modules or other system administration.
  for (int nr : {SCMP_SYS(unshare),
                 SCMP_SYS(setns),
                 SCMP_SYS(mount),
                 SCMP_SYS(umount2),
                 SCMP_SYS(pivot_root),
                 SCMP_SYS(chroot),
                 SCMP_SYS(open_tree),
                 SCMP_SYS(move_mount),
                 SCMP_SYS(fsopen),
                 SCMP_SYS(fsmount),
                 SCMP_SYS(keyctl),
                 SCMP_SYS(add_key),
                 SCMP_SYS(request_key),
                 SCMP_SYS(bpf),
                 SCMP_SYS(perf_event_open),
                 SCMP_SYS(userfaultfd),
                 SCMP_SYS(kexec_load),
                 SCMP_SYS(kexec_file_load),
                 SCMP_SYS(init_module),
                 SCMP_SYS(finit_module),
                 SCMP_SYS(delete_module),
                 SCMP_SYS(reboot),
                 SCMP_SYS(swapon),
                 SCMP_SYS(swapoff),
                 SCMP_SYS(acct),
                 SCMP_SYS(quotactl),
                 SCMP_SYS(name_to_handle_at),
                 SCMP_SYS(open_by_handle_at),
                 SCMP_SYS(iopl),
                 SCMP_SYS(ioperm),
                 SCMP_SYS(personality)})
    add(ctx, SCMP_ACT_ERRNO(EPERM), nr, {}, "administration");
  if (!own_pid_namespace) {
    // Signals, limits, priorities and scheduling only for itself (0 or its own pid).
    const scmp_datum_t self = kPidPlaceholder;
    ALIGN_DENY(ctx, kill, SCMP_A0(SCMP_CMP_NE, self));
    ALIGN_DENY(ctx, tgkill, SCMP_A0(SCMP_CMP_NE, self));
    ALIGN_DENY(ctx, rt_sigqueueinfo, SCMP_A0(SCMP_CMP_NE, self));
    ALIGN_DENY(ctx, rt_tgsigqueueinfo, SCMP_A0(SCMP_CMP_NE, self));
    ALIGN_DENY(ctx, prlimit64, SCMP_A0(SCMP_CMP_NE, 0));
    ALIGN_DENY(ctx, setpriority, SCMP_A1(SCMP_CMP_NE, 0));
    ALIGN_DENY(ctx, sched_setaffinity, SCMP_A0(SCMP_CMP_NE, 0));
    ALIGN_DENY(ctx, sched_setscheduler, SCMP_A0(SCMP_CMP_NE, 0));
    ALIGN_DENY(ctx, sched_setparam, SCMP_A0(SCMP_CMP_NE, 0));
    ALIGN_DENY(ctx, sched_setattr, SCMP_A0(SCMP_CMP_NE, 0));
  }

  // Export the BPF program through a memfd and read it back.
  const int fd = memfd_create("align-seccomp", MFD_CLOEXEC);
  if (fd < 0) throw IoError(std::string("seccomp: memfd_create: ") + std::strerror(errno));
  const std::unique_ptr<int, void (*)(int*)> closer(new int(fd), [](int* p) {
    ::close(*p);
    delete p;
  });
  if (const int rc = seccomp_export_bpf(ctx, fd); rc != 0)
    throw Error(std::string("seccomp: cannot export the filter: ") + std::strerror(-rc));
  const off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0 || size % static_cast<off_t>(sizeof(sock_filter)) != 0 ||
      lseek(fd, 0, SEEK_SET) != 0)
    throw Error("seccomp: the exported filter has an unexpected size");
  SeccompFilter filter;
  filter.program.resize(static_cast<size_t>(size) / sizeof(sock_filter));
  if (pread(fd, filter.program.data(), static_cast<size_t>(size), 0) != size)
    throw IoError(std::string("seccomp: reading the exported filter: ") + std::strerror(errno));
  for (size_t i = 0; i < filter.program.size(); ++i) {
    const sock_filter& ins = filter.program[i];
    if (BPF_CLASS(ins.code) == BPF_JMP && BPF_SRC(ins.code) == BPF_K && ins.k == kPidPlaceholder)
      filter.self_pid_slots.push_back(i);
  }
  if (!own_pid_namespace && filter.self_pid_slots.empty())
    throw Error("seccomp: the exported filter compares no pid (libseccomp changed?)");
  return filter;
}

int install_sandbox_filter(SeccompFilter& filter) {
  const uint32_t pid = static_cast<uint32_t>(getpid());
  for (size_t slot : filter.self_pid_slots)
    filter.program[slot].k = pid;
  sock_fprog prog{};
  prog.len = static_cast<unsigned short>(filter.program.size());
  prog.filter = filter.program.data();
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return errno;
  return 0;
}

int sandbox_filter_memfd(const SeccompFilter& filter) {
  if (!filter.self_pid_slots.empty())
    throw Error("seccomp: a filter with pid slots cannot be handed on");
  const int fd = memfd_create("align-seccomp", MFD_CLOEXEC);
  if (fd < 0) throw IoError(std::string("seccomp: memfd_create: ") + std::strerror(errno));
  const size_t bytes = filter.program.size() * sizeof(sock_filter);
  if (pwrite(fd, filter.program.data(), bytes, 0) != static_cast<ssize_t>(bytes)) {
    ::close(fd);
    throw IoError(std::string("seccomp: writing the filter: ") + std::strerror(errno));
  }
  return fd;
}

}  // namespace align
