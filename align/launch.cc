#include "align/launch.h"

#include <cstdlib>
#include <iostream>

#include "common/error.h"
#include "model/device_options.h"
#include "parallel/launch_env.h"

namespace align {

std::shared_ptr<ProcessGroup> join_launched_job(DeviceChoice device_choice,
                                                const std::string& field) {
  const LaunchEnv env = read_launch_env();
  if (!env.distributed()) return nullptr;
  ProcessGroupOptions options;
  if (const char* t = std::getenv("ALIGN_DIST_TIMEOUT_S")) {
    char* end = nullptr;
    const double seconds = std::strtod(t, &end);
    if (end == t || *end != '\0' || !(seconds > 0)) {
      throw InputError("environment variable ALIGN_DIST_TIMEOUT_S=\"" + std::string(t) +
                       "\": expected a positive number of seconds");
    }
    options.timeout = std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  }
  const torch::Device device = resolve_device(device_choice, field);
  std::shared_ptr<ProcessGroup> group = ProcessGroup::create(env, device, options);
  if (group->is_main()) {
    std::cerr << "align: " << env.world_size << " ranks (" << env.launcher << ", "
              << (device.is_cuda() ? "nccl" : "gloo") << ", rendezvous " << env.master_addr << ":"
              << env.master_port << ")\n";
  }
  return group;
}

void require_single_process(const std::string& command) {
  const LaunchEnv env = read_launch_env();
  if (!env.distributed()) return;
  throw InputError("align " + command + " runs in one process, but the launcher (" + env.launcher +
                   ") started " + std::to_string(env.world_size) +
                   ": run it without torchrun/srun (align sft, dpo and pts run on several; see "
                   "docs/distributed.md)");
}

std::string resolved_device_name(DeviceChoice device_choice, const std::string& field) {
  try {
    return resolve_device(device_choice, field).str();
  } catch (const InputError&) {
    return enum_name(device_choice);
  }
}

}  // namespace align
