// Starting the ranks of a multi-process job from a test, the way torchrun does: one process per
// rank with RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, each
// writing its output to its own log.
#pragma once

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace align::testing {

// A TCP port nobody listens on right now (the kernel picks it).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

struct RankProcess {
  pid_t pid = -1;
  std::string log;  // the rank's stdout and stderr
};

// Starts rank `rank` of `world` running `command` (a /bin/sh command line) with the launcher's
// variables; output to `log`.
inline RankProcess start_rank(const std::string& command, int rank, int world, int port,
                              const std::string& log) {
  RankProcess p;
  p.log = log;
  p.pid = ::fork();
  if (p.pid == 0) {
    ::setenv("RANK", std::to_string(rank).c_str(), 1);
    ::setenv("LOCAL_RANK", std::to_string(rank).c_str(), 1);
    ::setenv("WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("LOCAL_WORLD_SIZE", std::to_string(world).c_str(), 1);
    ::setenv("MASTER_ADDR", "127.0.0.1", 1);
    ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
    const std::string line = "exec " + command + " > '" + log + "' 2>&1";
    ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return p;
}

// Waits for `p` up to `timeout`; kills it if it is still running then. Returns the exit status,
// or -1 when it was killed (by a signal or by the timeout).
inline int wait_rank(const RankProcess& p, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (::waitpid(p.pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(p.pid, SIGKILL);
      ::waitpid(p.pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

struct JobResult {
  std::vector<int> codes;         // per rank
  std::vector<std::string> logs;  // per rank
  bool all_ok() const {
    for (int c : codes)
      if (c != 0) return false;
    return true;
  }
  std::string describe() const {
    std::string s;
    for (size_t r = 0; r < codes.size(); ++r)
      s += "--- rank " + std::to_string(r) + " exit " + std::to_string(codes[r]) + "\n" + logs[r];
    return s;
  }
};

// Runs `world` ranks of `command` to the end (each killed after `timeout`); logs in `log_dir`.
inline JobResult run_ranks(const std::string& command, int world, const std::string& log_dir,
                           std::chrono::seconds timeout = std::chrono::seconds(300)) {
  const int port = free_port();
  std::vector<RankProcess> ranks;
  for (int r = 0; r < world; ++r)
    ranks.push_back(
        start_rank(command, r, world, port, log_dir + "/rank-" + std::to_string(r) + ".log"));
  JobResult result;
  for (const RankProcess& p : ranks) {
    result.codes.push_back(wait_rank(p, timeout));
    result.logs.push_back(read_file(p.log));
  }
  return result;
}

}  // namespace align::testing
