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

PaddedDecodeRows pad_decode_rows(const std::vector<int64_t>& slots,
                                 const std::vector<int64_t>& positions) {
  if (slots.empty() || slots.size() != positions.size()) {
    throw InputError("pad_decode_rows: need as many positions as slots (>= 1), got " +
                     std::to_string(slots.size()) + " slots and " +
                     std::to_string(positions.size()) + " positions");
  }
  PaddedDecodeRows p;
  p.rows = static_cast<int64_t>(slots.size());
  p.bucket = decode_bucket(p.rows);
  const auto n = static_cast<size_t>(p.bucket);
  p.slots.assign(n, -1);
  p.positions.assign(n, 0);
  p.context_lens.assign(n, 1);
  p.valid.assign(n, false);
  for (size_t b = 0; b < slots.size(); ++b) {
    if (slots[b] < 0 || positions[b] < 0) {
      throw InputError("pad_decode_rows: row " + std::to_string(b) + " has slot " +
                       std::to_string(slots[b]) + " and position " + std::to_string(positions[b]) +
                       ", need both >= 0");
    }
    p.slots[b] = slots[b];
    p.positions[b] = positions[b];
    p.context_lens[b] = positions[b] + 1;
    p.valid[b] = true;
  }
  return p;
}

}  // namespace align
