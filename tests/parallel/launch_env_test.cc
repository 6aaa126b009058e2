// Reading the launcher's environment: torchrun's and SLURM's variables, precedence, defaults and
// errors that name the variable.
#include "parallel/launch_env.h"

#include <gtest/gtest.h>

#include <map>

#include "common/error.h"

namespace align {
namespace {

LaunchEnv read(const std::map<std::string, std::string>& vars) {
  return read_launch_env([&](const std::string& name) -> std::optional<std::string> {
    const auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  });
}

std::string error_of(const std::map<std::string, std::string>& vars) {
  try {
    read(vars);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(LaunchEnv, NoLauncherIsOneProcess) {
  const LaunchEnv env = read({});
  EXPECT_EQ(env.launcher, "none");
  EXPECT_EQ(env.world_size, 1);
  EXPECT_EQ(env.rank, 0);
  EXPECT_FALSE(env.distributed());
}

TEST(LaunchEnv, Torchrun) {
  const LaunchEnv env = read({{"RANK", "5"},
                              {"LOCAL_RANK", "1"},
                              {"WORLD_SIZE", "8"},
                              {"LOCAL_WORLD_SIZE", "4"},
                              {"MASTER_ADDR", "node0"},
                              {"MASTER_PORT", "29400"},
                              {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                              {"TORCHELASTIC_RESTART_COUNT", "2"},
                              {"SLURM_PROCID", "0"},
                              {"SLURM_NTASKS", "2"}});
  EXPECT_EQ(env.launcher, "torchrun");  // torchrun's variables win inside a SLURM job
  EXPECT_EQ(env.rank, 5);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.world_size, 8);
  EXPECT_EQ(env.local_world_size, 4);
  EXPECT_EQ(env.master_addr, "node0");
  EXPECT_EQ(env.master_port, 29400);
  EXPECT_TRUE(env.agent_store);
  EXPECT_EQ(env.restart_count, 2);
  EXPECT_TRUE(env.distributed());
}

TEST(LaunchEnv, TorchrunSingleProcessNeedsNoMaster) {
  const LaunchEnv env = read({{"RANK", "0"}, {"WORLD_SIZE", "1"}});
  EXPECT_FALSE(env.distributed());
  EXPECT_FALSE(env.agent_store);
  EXPECT_TRUE(env.master_addr.empty());
  const LaunchEnv one =
      read({{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "29501"}});
  EXPECT_FALSE(one.distributed());
  EXPECT_EQ(one.master_addr, "h");  // kept for a one-rank run through a real backend
  EXPECT_EQ(one.master_port, 29501);
}

TEST(LaunchEnv, Slurm) {
  const LaunchEnv env = read({{"SLURM_PROCID", "9"},
                              {"SLURM_LOCALID", "1"},
                              {"SLURM_NTASKS", "16"},
                              {"SLURM_TASKS_PER_NODE", "8(x2)"},
                              {"SLURM_JOB_NODELIST", "gpu[003-004]"}});
  EXPECT_EQ(env.launcher, "slurm");
  EXPECT_EQ(env.rank, 9);
  EXPECT_EQ(env.local_rank, 1);
  EXPECT_EQ(env.world_size, 16);
  EXPECT_EQ(env.local_world_size, 8);
  EXPECT_EQ(env.master_addr, "gpu003");
  EXPECT_EQ(env.master_port, 29500);
}

TEST(LaunchEnv, SlurmMasterAddrWins) {
  const LaunchEnv env = read({{"SLURM_PROCID", "0"},
                              {"SLURM_NTASKS", "2"},
                              {"SLURM_NTASKS_PER_NODE", "2"},
                              {"MASTER_ADDR", "10.0.0.7"},
                              {"MASTER_PORT", "12345"},
                              {"SLURM_JOB_NODELIST", "gpu[003-004]"}});
  EXPECT_EQ(env.master_addr, "10.0.0.7");
  EXPECT_EQ(env.master_port, 12345);
  EXPECT_EQ(env.local_world_size, 2);
}

TEST(LaunchEnv, FirstSlurmHost) {
  EXPECT_EQ(first_slurm_host("node7"), "node7");
  EXPECT_EQ(first_slurm_host("node7,node9"), "node7");
  EXPECT_EQ(first_slurm_host("gpu[003-005,9],cpu1"), "gpu003");
  EXPECT_EQ(first_slurm_host("gpu[12,3]"), "gpu12");
  EXPECT_EQ(first_slurm_host("a1,gpu[1-2]"), "a1");
  EXPECT_THROW(first_slurm_host("gpu[1-2"), InputError);
}

TEST(LaunchEnv, ErrorsNameTheVariable) {
  EXPECT_NE(
      error_of({{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}})
          .find("RANK=\"2\": expected an integer in [0, 1]"),
      std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "two"}}).find("WORLD_SIZE=\"two\""),
            std::string::npos);
  EXPECT_NE(error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "29500"}})
                .find("MASTER_ADDR is not set"),
            std::string::npos);
  EXPECT_NE(
      error_of({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "70000"}})
          .find("MASTER_PORT=\"70000\""),
      std::string::npos);
  EXPECT_NE(error_of({{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}}).find("MASTER_ADDR"),
            std::string::npos);
  EXPECT_NE(error_of({{"SLURM_PROCID", "0"},
                      {"SLURM_NTASKS", "2"},
                      {"SLURM_TASKS_PER_NODE", "x"},
                      {"MASTER_ADDR", "h"}})
                .find("SLURM_TASKS_PER_NODE=\"x\""),
            std::string::npos);
}

}  // namespace
}  // namespace align
