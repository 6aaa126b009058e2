#include "train/memory_stats.h"

#include <sys/resource.h>

#ifdef ALIGN_WITH_CUDA
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace align {

namespace {
constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
}

void add_memory_stats(nlohmann::json& record, const torch::Device& device) {
  rusage usage{};
  if (getrusage(RUSAGE_SELF, &usage) == 0) {
    record["peak_memory_rss"] = static_cast<double>(usage.ru_maxrss) * 1024.0 / kGiB;  // KiB
  }
#ifdef ALIGN_WITH_CUDA
  if (device.is_cuda()) {
    using c10::CachingDeviceAllocator::StatType;
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device.index());
    const auto all = static_cast<size_t>(StatType::AGGREGATE);
    record["peak_memory_alloc"] = static_cast<double>(stats.allocated_bytes[all].peak) / kGiB;
    record["peak_memory_reserved"] = static_cast<double>(stats.reserved_bytes[all].peak) / kGiB;
  }
#else
  (void)device;
#endif
}

}  // namespace align
