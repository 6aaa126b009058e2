#include "sandbox/seccomp_filter.h"

#include <linux/audit.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

namespace align {
namespace {

#if defined(__x86_64__)
constexpr uint32_t kArch = AUDIT_ARCH_X86_64;
#elif defined(__aarch64__)
constexpr uint32_t kArch = AUDIT_ARCH_AARCH64;
#else
constexpr uint32_t kArch = 0;
#endif

constexpr uint32_t kNrOffset = offsetof(seccomp_data, nr);
constexpr uint32_t kArchOffset = offsetof(seccomp_data, arch);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr uint32_t kArg0Low = offsetof(seccomp_data, args);  // low 32 bits of args[0]
#else
constexpr uint32_t kArg0Low = offsetof(seccomp_data, args) + 4;
#endif

sock_filter bpf_stmt(uint16_t code, uint32_t k) {
  return sock_filter{code, 0, 0, k};
}
sock_filter bpf_jump(uint16_t code, uint32_t k, uint8_t jt, uint8_t jf) {
  return sock_filter{code, jt, jf, k};
}
uint32_t errno_action(int error) {
  return SECCOMP_RET_ERRNO | (static_cast<uint32_t>(error) & SECCOMP_RET_DATA);
}

// "syscall nr fails with `error`": two instructions that fall through for other syscalls.
void deny(std::vector<sock_filter>& p, long nr, int error) {
  p.push_back(bpf_jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 1));
  p.push_back(bpf_stmt(BPF_RET | BPF_K, errno_action(error)));
}

// "syscall nr is allowed when the low 32 bits of args[0] pass `test`, else EPERM". `test` is
// BPF_JEQ (k patched later, returned as a slot) or BPF_JSET with k = `value`.
size_t allow_if_arg0(std::vector<sock_filter>& p, long nr, uint16_t test, uint32_t value) {
  p.push_back(bpf_jump(BPF_JMP | BPF_JEQ | BPF_K, static_cast<uint32_t>(nr), 0, 4));
  p.push_back(bpf_stmt(BPF_LD | BPF_W | BPF_ABS, kArg0Low));
  const size_t slot = p.size();
  p.push_back(bpf_jump(BPF_JMP | test | BPF_K, value, 0, 1));
  p.push_back(bpf_stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  p.push_back(bpf_stmt(BPF_RET | BPF_K, errno_action(EPERM)));
  return slot;
}

}  // namespace

bool sandbox_filter_supported() {
  return kArch != 0;
}

SeccompFilter build_sandbox_filter() {
  SeccompFilter filter;
  std::vector<sock_filter>& p = filter.program;
  p.push_back(bpf_stmt(BPF_LD | BPF_W | BPF_ABS, kArchOffset));
  p.push_back(bpf_jump(BPF_JMP | BPF_JEQ | BPF_K, kArch, 1, 0));
  p.push_back(bpf_stmt(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS));
  p.push_back(bpf_stmt(BPF_LD | BPF_W | BPF_ABS, kNrOffset));
#if defined(__x86_64__)
  // The x32 ABI numbers its calls from 0x40000000; none of them is allowed.
  p.push_back(bpf_jump(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
  p.push_back(bpf_stmt(BPF_RET | BPF_K, errno_action(EPERM)));
  deny(p, SYS_fork, EPERM);
  deny(p, SYS_vfork, EPERM);
#endif
  for (long nr : {SYS_socket, SYS_socketpair, SYS_io_uring_setup, SYS_ptrace, SYS_process_vm_readv,
                  SYS_process_vm_writev, SYS_tkill, SYS_setpgid, SYS_setsid})
    deny(p, nr, EPERM);
  deny(p, SYS_clone3, ENOSYS);
  allow_if_arg0(p, SYS_clone, BPF_JSET, CLONE_THREAD);
  filter.self_pid_slots.push_back(allow_if_arg0(p, SYS_kill, BPF_JEQ, 0));
  filter.self_pid_slots.push_back(allow_if_arg0(p, SYS_tgkill, BPF_JEQ, 0));
  p.push_back(bpf_stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
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

}  // namespace align
