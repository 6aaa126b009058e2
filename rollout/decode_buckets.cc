#include "rollout/decode_buckets.h"

#include <string>

#include "common/error.h"

namespace align {

const std::vector<int64_t>& decode_bucket_sizes() {
  static const std::vector<int64_t> sizes = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  return sizes;
}

int64_t decode_bucket(int64_t rows) {
  if (rows < 1) throw InputError("decode_bucket: rows = " + std::to_string(rows) + ", need >= 1");
  for (int64_t size : decode_bucket_sizes()) {
    if (size >= rows) return size;
  }
  return rows;
}

}  // namespace align
