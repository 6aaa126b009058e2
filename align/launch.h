// Joining the multi-process job a launcher started (torchrun, SLURM; parallel/launch_env.h): the
// commands that can run data-parallel call this once, before their recipe.
#pragma once

#include <memory>
#include <string>

#include "model/device_options.h"
#include "parallel/process_group.h"

namespace align {

// The process group of this job for a model on `device_choice` (`field`
// names it in errors): null for a single-process run (no launcher variables), else a joined
// group (Gloo on CPU, NCCL on CUDA) with the timeout of ALIGN_DIST_TIMEOUT_S (seconds, default
// 1800).
std::shared_ptr<ProcessGroup> join_launched_job(DeviceChoice device_choice,
                                                const std::string& field);

// Commands that run in one process only (pipeline, eval, generate): a launcher starting several
// copies would have them all write the same outputs. Throws InputError naming `command` when
// the launcher's variables say more than one process.
void require_single_process(const std::string& command);

// `device_choice` as this run resolves it ("cpu", "cuda"), for run.json (common/run_info.h); the
// choice's own name when it does not resolve (cuda without a GPU: the recipe reports that).
std::string resolved_device_name(DeviceChoice device_choice, const std::string& field);

}  // namespace align
