// Which rank owns which parameter when optimizer state is sharded (ZeRO stage 2 with whole
// parameters as the unit, as torch's ZeroRedundancyOptimizer partitions): the parameters, in
// order, are cut into `world` contiguous runs of about equal element counts. Contiguous runs keep
// each gradient bucket (a run of neighbouring parameters) on few owners.
#pragma once

#include <cstdint>
#include <vector>

namespace align {

// owner[i] for parameter i of `numels`: non-decreasing, in [0, world). Rank r's run starts at the
// first parameter whose preceding elements reach r/world of the total. A rank may own nothing
// (fewer parameters than ranks, or one huge parameter).
std::vector<int> partition_contiguous(const std::vector<int64_t>& numels, int world);

}  // namespace align
