#include "parallel/data_parallel.h"

#include <torch/torch.h>

namespace align {

std::vector<int64_t> local_micro_batches(const ProcessGroup& group, int64_t count) {
  std::vector<int64_t> mine;
  for (int64_t i = group.rank(); i < count; i += group.world_size())
    mine.push_back(i);
  return mine;
}

std::vector<double> sum_over_ranks(ProcessGroup& group, std::vector<double> values) {
  if (group.world_size() == 1 || values.empty()) return values;
  torch::Tensor t = torch::tensor(values, torch::kFloat64).to(group.device());
  group.all_reduce_sum(t);
  t = t.cpu();
  const double* p = t.data_ptr<double>();
  return std::vector<double>(p, p + values.size());
}

}  // namespace align
