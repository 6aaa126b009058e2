// Where this process sits in a multi-process job, read from the launcher's environment.
//
//   torchrun (torch.distributed.run):  RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE,
//                                      MASTER_ADDR, MASTER_PORT, TORCHELASTIC_USE_AGENT_STORE,
//                                      TORCHELASTIC_RESTART_COUNT
//   SLURM (srun, one task per GPU):    SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS,
//                                      SLURM_NTASKS_PER_NODE or SLURM_TASKS_PER_NODE,
//                                      MASTER_ADDR (or the first host of SLURM_JOB_NODELIST),
//                                      MASTER_PORT (default 29500)
//
// torchrun's variables win when both are set (torchrun inside an sbatch script). Without either,
// the process is a single-process job (rank 0 of 1) and needs no rendezvous.
#pragma once

#include <functional>
#include <optional>
#include <string>

namespace align {

struct LaunchEnv {
  int rank = 0;              // global rank in [0, world_size)
  int local_rank = 0;        // rank on this node: picks the GPU
  int world_size = 1;        // processes in the job
  int local_world_size = 1;  // processes on this node
  std::string master_addr;   // host of the rendezvous store (rank 0's TCPStore or torchrun's)
  int master_port = 0;
  bool agent_store = false;  // torchrun's agent already serves the store; every rank is a client
  int restart_count = 0;     // torchrun restarts so far: keys are prefixed with it
  std::string launcher;      // "torchrun", "slurm" or "none"

  bool distributed() const { return world_size > 1; }
};

// Reads the launcher's variables through `getenv` (nullopt when unset); throws InputError naming
// the variable, the value found and what was expected (an integer in range, a host, a port).
LaunchEnv read_launch_env(
    const std::function<std::optional<std::string>(const std::string&)>& getenv);
// The same from this process's environment.
LaunchEnv read_launch_env();

// The first host of a SLURM node list: "gpu[003-005,9],cpu1" -> "gpu003"; "node7" -> "node7".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace align
