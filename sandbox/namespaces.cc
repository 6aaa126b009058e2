#include "sandbox/namespaces.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <mutex>

#include "common/error.h"
#include "sandbox/subprocess.h"

namespace align {

std::string find_bubblewrap() {
  if (const char* forced = std::getenv("ALIGN_BWRAP"))
    return ::access(forced, X_OK) == 0 ? forced : "";
  for (const char* path : {"/usr/bin/bwrap", "/bin/bwrap"})
    if (::access(path, X_OK) == 0) return path;
  return find_program("bwrap");
}

std::vector<std::string> namespace_argv(const std::string& bwrap, const std::string& host_cwd,
                                        int seccomp_fd, const std::vector<std::string>& argv) {
  const std::string id = std::to_string(kSandboxUid);
  std::vector<std::string> out = {
      bwrap, "--unshare-all", "--die-with-parent", "--new-session", "--uid", id,    "--gid",
      id,    "--hostname",    "sandbox",           "--ro-bind",     "/usr",  "/usr"};
  // A merged-/usr system links /bin, /lib, ... into /usr; an older one has real directories.
  namespace fs = std::filesystem;
  for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
    std::error_code error;
    const fs::file_status link = fs::symlink_status(top, error);
    if (error || !fs::exists(link)) continue;
    if (fs::is_symlink(link)) {
      out.insert(out.end(), {"--symlink", fs::read_symlink(top, error).string(), top});
    } else if (fs::is_directory(link)) {
      out.insert(out.end(), {"--ro-bind", top, top});
    }
  }
  out.insert(out.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs",
                         "/dev/shm", "--bind", host_cwd, kSandboxWorkDir, "--chdir",
                         kSandboxWorkDir, "--seccomp", std::to_string(seccomp_fd), "--"});
  out.insert(out.end(), argv.begin(), argv.end());
  return out;
}

std::string namespace_isolation_problem() {
  static std::mutex mutex;
  static std::map<std::string, std::string> problems;  // by bubblewrap path
  const std::string bwrap = find_bubblewrap();
  if (bwrap.empty()) {
    return std::getenv("ALIGN_BWRAP")
               ? "ALIGN_BWRAP=" + std::string(std::getenv("ALIGN_BWRAP")) + " is not executable"
               : "bubblewrap (bwrap) is not installed (Debian package bubblewrap)";
  }
  const std::lock_guard<std::mutex> lock(mutex);
  if (const auto it = problems.find(bwrap); it != problems.end()) return it->second;
  std::string& problem = problems[bwrap];
  {
    try {
      const ScratchDir dir;
      SubprocessRequest request;
      request.argv = {"/usr/bin/true"};
      request.cwd = dir.path();
      request.timeout_s = 10;
      request.sandbox = true;
      request.isolation = Isolation::kNamespaces;
      const SubprocessResult r = run_subprocess(request);
      if (!r.succeeded()) {
        problem = "bwrap could not start a program in new namespaces (" + r.describe() + ": " +
                  r.err.substr(0, 300) +
                  "); unprivileged user namespaces may be disabled (sysctl "
                  "kernel.unprivileged_userns_clone, user.max_user_namespaces)";
      }
    } catch (const std::exception& e) {
      problem = std::string("bwrap could not be run: ") + e.what();
    }
  }
  return problem;
}

}  // namespace align
