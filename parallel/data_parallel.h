// Splitting a training step over the ranks of a data-parallel job.
//
// A step is `count` micro-batches drawn from one global data order that every rank computes alike;
// rank r runs micro-batches r, r + world, r + 2 world, ... The objective of each micro-batch is
// normalised by the whole step's size (known to every rank), so summing the ranks' gradients
// gives the gradient of the global batch, and the result does not depend on the number of ranks
// (which is what lets a checkpoint resume on a different number of them).
#pragma once

#include <cstdint>
#include <vector>

#include "parallel/process_group.h"

namespace align {

// The indices in [0, count) this rank runs, ascending.
std::vector<int64_t> local_micro_batches(const ProcessGroup& group, int64_t count);

// Element-wise sums of `values` over the ranks (every rank gets them); unchanged on one rank.
std::vector<double> sum_over_ranks(ProcessGroup& group, std::vector<double> values);

}  // namespace align
