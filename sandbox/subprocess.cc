#include "sandbox/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "common/error.h"
#include "sandbox/namespaces.h"
#include "sandbox/seccomp_filter.h"
#include "sandbox/subprocess_child.h"

namespace align {
namespace {

using Clock = std::chrono::steady_clock;

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() { reset(); }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

[[noreturn]] void io_error(const std::string& what) {
  throw IoError("subprocess: " + what + ": " + std::strerror(errno));
}

// argv/envp for execve, built before fork.
struct CStrings {
  explicit CStrings(const std::vector<std::string>& strings) : storage(strings) {
    for (std::string& s : storage)
      pointers.push_back(s.data());
    pointers.push_back(nullptr);
  }
  std::vector<std::string> storage;
  std::vector<char*> pointers;
};

// stdin for the child: a memfd holding the data, or /dev/null.
int stdin_source(const std::string& data) {
  if (data.empty()) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) io_error("open /dev/null");
    return fd;
  }
  Fd fd(memfd_create("align-stdin", MFD_CLOEXEC));
  if (fd.get() < 0) io_error("memfd_create");
  for (size_t done = 0; done < data.size();) {
    const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) io_error("write stdin");
    done += static_cast<size_t>(n);
  }
  if (lseek(fd.get(), 0, SEEK_SET) != 0) io_error("lseek stdin");
  return fd.release();
}

// Reads what `fd` has now into `kept` (up to `limit` bytes), counting into `total`; stops early
// once `total` passes `stop_after`. False once the stream is closed.
bool drain(int fd, std::string& kept, size_t limit, size_t& total, size_t stop_after) {
  char buffer[1 << 16];
  while (total <= stop_after) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK;
    if (n == 0) return false;
    const size_t got = static_cast<size_t>(n);
    if (kept.size() < limit) kept.append(buffer, std::min(got, limit - kept.size()));
    total += got;
  }
  return true;
}

// The parent's side of one run: waits, drains, enforces the deadline and the output cap, reaps.
class Monitor {
 public:
  Monitor(const SubprocessRequest& request, pid_t pid, int out, int err)
      : request_(request), pid_(pid), out_(out), err_(err) {
    fcntl(out, F_SETFL, O_NONBLOCK);
    fcntl(err, F_SETFL, O_NONBLOCK);
#ifdef SYS_pidfd_open
    pidfd_.reset(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
#endif
  }
  ~Monitor() {
    if (!reaped_) {  // only on an exception: never leave the child running or unreaped
      kill(-pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  SubprocessResult run() {
    const Clock::time_point start = Clock::now();
    deadline_ = start + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(request_.timeout_s));
    while (out_.get() >= 0 || err_.get() >= 0 || !reaped_) {
      const Clock::time_point now = Clock::now();
      if (!reaped_ && now >= deadline_) {
        result_.timed_out = true;
        kill_and_reap();
      }
      if (reaped_ && now >= drain_deadline_) break;
      wait_for_events(reaped_ ? drain_deadline_ : deadline_);
      read_streams();
      if (!reaped_) try_reap();
    }
    result_.wall_s = std::chrono::duration<double>(Clock::now() - start).count();
    return result_;
  }

 private:
  void wait_for_events(Clock::time_point until) {
    pollfd fds[3];
    nfds_t count = 0;
    for (int fd : {out_.get(), err_.get(), reaped_ ? -1 : pidfd_.get()}) {
      if (fd >= 0) fds[count++] = pollfd{fd, POLLIN, 0};
    }
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now()) +
                std::chrono::milliseconds(1);
    if (!reaped_ && pidfd_.get() < 0) wait = std::min(wait, std::chrono::milliseconds(10));
    poll(fds, count, static_cast<int>(std::max<long long>(0, wait.count())));
  }

  void read_streams() {
    const size_t cap = request_.kill_after_output_bytes;
    if (out_.get() >= 0 && !drain(out_.get(), result_.out, request_.output_limit, total_, cap))
      out_.reset();
    if (err_.get() >= 0 && !drain(err_.get(), result_.err, request_.output_limit, total_, cap))
      err_.reset();
    if (total_ > cap && !result_.output_overflow) {
      result_.output_overflow = true;
      kill_and_reap();
    }
  }

  void try_reap() {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) finish(status);
  }

  // The group, and the child itself in case it moved to another group.
  void kill_and_reap() {
    kill(-pid_, SIGKILL);
    if (reaped_) return;
    kill(pid_, SIGKILL);
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    finish(status);
  }

  // The child is reaped: stray members of its group go too; the pipes get a short grace period.
  void finish(int status) {
    reaped_ = true;
    kill(-pid_, SIGKILL);
    if (WIFEXITED(status)) result_.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) result_.signal = WTERMSIG(status);
    drain_deadline_ = std::min(deadline_, Clock::now() + std::chrono::milliseconds(500));
  }

  const SubprocessRequest& request_;
  pid_t pid_;
  Fd out_, err_, pidfd_;
  bool reaped_ = false;
  size_t total_ = 0;
  Clock::time_point deadline_, drain_deadline_;
  SubprocessResult result_;
};

// Removes `path` and everything in it, also what a program made unreadable or unwritable.
void remove_scratch_tree(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::remove_all(path, error) != static_cast<std::uintmax_t>(-1) && !error) return;
  fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, error);
  for (auto it = fs::recursive_directory_iterator(path, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (!it->is_symlink(error))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, error);
  }
  fs::remove_all(path, error);
}

// Gives the tree under `dir` to the sandbox user (align runs as root; the program does not),
// after checking that the sandbox user can reach it at all.
void hand_to_sandbox_user(const std::string& dir) {
  namespace fs = std::filesystem;
  for (fs::path up = fs::absolute(dir).parent_path(); !up.empty(); up = up.parent_path()) {
    struct stat st {};
    if (::stat(up.c_str(), &st) == 0 && !(st.st_mode & S_IXOTH) && st.st_uid != kSandboxUid) {
      throw IoError("subprocess: the sandbox user (uid " + std::to_string(kSandboxUid) +
                    ") cannot reach " + dir + ": " + up.string() +
                    " is not searchable by others (set TMPDIR to a directory such as /tmp)");
    }
    if (up == up.parent_path()) break;
  }
  auto give = [](const fs::path& p) {
    if (::lchown(p.c_str(), kSandboxUid, kSandboxUid) != 0) io_error("chown " + p.string());
  };
  give(dir);
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(dir, error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error))
    give(it->path());
  if (error) throw IoError("subprocess: listing " + dir + ": " + error.message());
}

}  // namespace

SubprocessResult run_subprocess(const SubprocessRequest& request) {
  if (request.argv.empty()) throw Error("subprocess: empty argv");
  const bool isolated = request.isolation == Isolation::kNamespaces;
  if (isolated && (!request.sandbox || request.cwd.empty()))
    throw Error("subprocess: namespace isolation needs sandbox and a working directory");
  SeccompFilter filter;
  if (request.sandbox) filter = build_sandbox_filter(/*own_pid_namespace=*/isolated);
  std::vector<std::string> program = request.argv;
  Fd filter_fd;
  const bool root = ::geteuid() == 0;
  if (isolated) {
    const std::string bwrap = find_bubblewrap();
    if (bwrap.empty())
      throw IoError("subprocess: namespace isolation needs bubblewrap (Debian package bubblewrap)");
    filter_fd.reset(sandbox_filter_memfd(filter));
    program = namespace_argv(bwrap, request.cwd, kChildSeccompFd, request.argv);
    if (root) hand_to_sandbox_user(request.cwd);
  }
  const CStrings argv(program), envp(request.env);
  Fd in(stdin_source(request.stdin_data));
  int out[2], err[2], report[2];
  if (pipe2(out, O_CLOEXEC) != 0) io_error("pipe");
  Fd out_read(out[0]), out_write(out[1]);
  if (pipe2(err, O_CLOEXEC) != 0) io_error("pipe");
  Fd err_read(err[0]), err_write(err[1]);
  if (pipe2(report, O_CLOEXEC) != 0) io_error("pipe");
  Fd report_read(report[0]), report_write(report[1]);
  const ChildPlan plan{&request,
                       argv.pointers.data(),
                       envp.pointers.data(),
                       in.get(),
                       out[1],
                       err[1],
                       report[1],
                       request.sandbox && !isolated ? &filter : nullptr,
                       isolated ? filter_fd.get() : -1,
                       isolated && root};
  const pid_t pid = fork();
  if (pid < 0) io_error("fork");
  if (pid == 0) run_child(plan);
  in.reset();
  out_write.reset();
  err_write.reset();
  report_write.reset();
  int message[2] = {0, 0};
  ssize_t n;
  while ((n = ::read(report_read.get(), message, sizeof message)) < 0 && errno == EINTR) {
  }
  Monitor monitor(request, pid, out_read.release(), err_read.release());
  if (n > 0) {
    monitor.run();
    errno = message[1];
    io_error(std::string("cannot start ") + request.argv[0] + " (" + child_step_name(message[0]) +
             ")");
  }
  return monitor.run();
}

std::string SubprocessResult::describe() const {
  std::string text = exit_code >= 0 ? "exit status " + std::to_string(exit_code)
                                    : "killed by signal " + std::to_string(signal);
  if (timed_out) text += " (timed out)";
  if (output_overflow) text += " (too much output)";
  return text;
}

std::string find_program(const std::string& name) {
  if (name.empty()) return "";
  if (name.find('/') != std::string::npos) return ::access(name.c_str(), X_OK) == 0 ? name : "";
  const char* path = std::getenv("PATH");
  const std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end > start ? dirs.substr(start, end - start) : ".";
    const std::string candidate = dir + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0 && !std::filesystem::is_directory(candidate))
      return candidate;
    start = end + 1;
  }
  return "";
}

namespace {

// Removes align-oracle-<pid>-* folders under `tmp` whose process no longer runs.
void remove_stale_scratch_dirs(const std::filesystem::path& tmp) {
  namespace fs = std::filesystem;
  std::error_code error;
  for (auto it = fs::directory_iterator(tmp, error); !error && it != fs::directory_iterator();
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    const std::string prefix = "align-oracle-";
    if (name.rfind(prefix, 0) != 0 || !it->is_directory(error)) continue;
    const size_t dash = name.find('-', prefix.size());
    if (dash == std::string::npos) continue;
    char* end = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &end, 10);
    if (end != name.c_str() + dash || pid <= 0) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive or not ours
    remove_scratch_tree(it->path().string());
  }
}

}  // namespace

ScratchDir::ScratchDir() {
  const std::filesystem::path tmp = std::filesystem::temp_directory_path();
  static std::once_flag swept;
  std::call_once(swept, [&] { remove_stale_scratch_dirs(tmp); });
  std::string pattern = (tmp / ("align-oracle-" + std::to_string(::getpid()) + "-XXXXXX")).string();
  if (!::mkdtemp(pattern.data())) io_error("mkdtemp " + pattern);
  path_ = pattern;
}

ScratchDir::~ScratchDir() {
  remove_scratch_tree(path_);
}

}  // namespace align
