#include "parallel/param_partition.h"

#include <algorithm>

namespace align {

std::vector<int> partition_contiguous(const std::vector<int64_t>& numels, int world) {
  int64_t total = 0;
  for (int64_t n : numels)
    total += n;
  std::vector<int> owner(numels.size(), 0);
  int64_t before = 0;  // elements of the parameters before i
  for (size_t i = 0; i < numels.size(); ++i) {
    // The last rank r with r * total <= before * world (a start boundary already passed).
    const int64_t r = total > 0 ? (before * world) / total : 0;
    owner[i] = static_cast<int>(std::min<int64_t>(r, world - 1));
    before += numels[i];
  }
  return owner;
}

}  // namespace align
