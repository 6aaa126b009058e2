// Peak memory of a training process, for the per-step log (docs/metrics.md; torchtune's names):
//   peak_memory_rss        the process's peak resident set (getrusage), GiB
//   peak_memory_alloc      on CUDA: peak bytes allocated by LibTorch's caching allocator, GiB
//   peak_memory_reserved   on CUDA: peak bytes the allocator reserved from the driver, GiB
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>

namespace align {

// Adds the fields above (the CUDA ones only when `device` is a CUDA device) to `record`.
void add_memory_stats(nlohmann::json& record, const torch::Device& device);

}  // namespace align
