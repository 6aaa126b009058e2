#include "parallel/launch_env.h"

#include <cstdlib>

#include "common/error.h"

namespace align {
namespace {

using Getenv = std::function<std::optional<std::string>(const std::string&)>;

int parse_int(const Getenv& getenv, const std::string& name, int lo, int hi) {
  const std::optional<std::string> v = getenv(name);
  if (!v) throw InputError("environment variable " + name + " is not set");
  size_t used = 0;
  long long n = 0;
  try {
    n = std::stoll(*v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v->size() || n < lo || n > hi) {
    throw InputError("environment variable " + name + "=\"" + *v + "\": expected an integer in [" +
                     std::to_string(lo) + ", " + std::to_string(hi) + "]");
  }
  return static_cast<int>(n);
}

int parse_int_or(const Getenv& getenv, const std::string& name, int lo, int hi, int fallback) {
  return getenv(name) ? parse_int(getenv, name, lo, hi) : fallback;
}

std::string require_host(const Getenv& getenv, const std::string& name) {
  const std::optional<std::string> v = getenv(name);
  if (!v || v->empty()) throw InputError("environment variable " + name + " is not set");
  return *v;
}

// SLURM_TASKS_PER_NODE: "4(x2),3" -> the count on the first node (4).
int first_tasks_per_node(const std::string& spec) {
  size_t used = 0;
  int n = 0;
  try {
    n = std::stoi(spec, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || n < 1) {
    throw InputError("environment variable SLURM_TASKS_PER_NODE=\"" + spec +
                     "\": expected a task count like 8 or 8(x2)");
  }
  return n;
}

}  // namespace

std::string first_slurm_host(const std::string& nodelist) {
  const size_t comma = nodelist.find(',');
  const size_t bracket = nodelist.find('[');
  if (bracket == std::string::npos || (comma != std::string::npos && comma < bracket)) {
    return nodelist.substr(0, comma);
  }
  const size_t close = nodelist.find(']', bracket);
  if (close == std::string::npos) {
    throw InputError("environment variable SLURM_JOB_NODELIST=\"" + nodelist +
                     "\": unbalanced '['");
  }
  const std::string ranges = nodelist.substr(bracket + 1, close - bracket - 1);
  const std::string first = ranges.substr(0, ranges.find_first_of(",-"));
  return nodelist.substr(0, bracket) + first;
}

LaunchEnv read_launch_env(const Getenv& getenv) {
  LaunchEnv env;
  constexpr int kMaxRanks = 1 << 20;
  if (getenv("RANK") || getenv("WORLD_SIZE")) {
    env.launcher = "torchrun";
    env.world_size = parse_int(getenv, "WORLD_SIZE", 1, kMaxRanks);
    env.rank = parse_int(getenv, "RANK", 0, env.world_size - 1);
    env.local_world_size =
        parse_int_or(getenv, "LOCAL_WORLD_SIZE", 1, env.world_size, env.world_size);
    env.local_rank = parse_int_or(getenv, "LOCAL_RANK", 0, env.local_world_size - 1, 0);
    env.agent_store = getenv("TORCHELASTIC_USE_AGENT_STORE").value_or("") == "True";
    env.restart_count = parse_int_or(getenv, "TORCHELASTIC_RESTART_COUNT", 0, kMaxRanks, 0);
    if (env.world_size > 1 || (getenv("MASTER_ADDR") && getenv("MASTER_PORT"))) {
      env.master_addr = require_host(getenv, "MASTER_ADDR");
      env.master_port = parse_int(getenv, "MASTER_PORT", 1, 65535);
    }
    return env;
  }
  if (getenv("SLURM_PROCID") && getenv("SLURM_NTASKS")) {
    env.launcher = "slurm";
    env.world_size = parse_int(getenv, "SLURM_NTASKS", 1, kMaxRanks);
    env.rank = parse_int(getenv, "SLURM_PROCID", 0, env.world_size - 1);
    if (getenv("SLURM_NTASKS_PER_NODE")) {
      env.local_world_size = parse_int(getenv, "SLURM_NTASKS_PER_NODE", 1, env.world_size);
    } else if (const auto spec = getenv("SLURM_TASKS_PER_NODE")) {
      env.local_world_size = first_tasks_per_node(*spec);
    } else {
      env.local_world_size = env.world_size;
    }
    env.local_rank = parse_int_or(getenv, "SLURM_LOCALID", 0, kMaxRanks, 0);
    if (env.world_size > 1) {
      if (getenv("MASTER_ADDR")) {
        env.master_addr = require_host(getenv, "MASTER_ADDR");
      } else if (const auto nodes = getenv("SLURM_JOB_NODELIST")) {
        env.master_addr = first_slurm_host(*nodes);
      } else {
        throw InputError(
            "SLURM job without MASTER_ADDR or SLURM_JOB_NODELIST: set MASTER_ADDR to the first "
            "node's host name");
      }
      env.master_port = parse_int_or(getenv, "MASTER_PORT", 1, 65535, 29500);
    }
    return env;
  }
  env.launcher = "none";
  return env;
}

LaunchEnv read_launch_env() {
  return read_launch_env([](const std::string& name) -> std::optional<std::string> {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  });
}

}  // namespace align
