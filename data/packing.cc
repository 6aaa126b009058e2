#include "data/packing.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <string>

#include "common/error.h"

namespace align {

void append_example(PackedRow& row, const SftExample& example) {
  const size_t n = example.ids.size();
  if (example.loss_mask.size() != n) {
    throw InputError("example has " + std::to_string(n) + " ids but " +
                     std::to_string(example.loss_mask.size()) + " loss_mask entries");
  }
  const int64_t segment = row.num_examples++;
  for (size_t i = 0; i < n; ++i) {
    row.tokens.push_back(example.ids[i]);
    row.positions.push_back(static_cast<int64_t>(i));
    row.segments.push_back(segment);
    row.targets.push_back(i + 1 < n && example.loss_mask[i + 1] ? example.ids[i + 1]
                                                                : kIgnoreTarget);
  }
}

PackedRow pack_examples(const std::vector<SftExample>& examples,
                        const std::vector<int64_t>& indices) {
  PackedRow row;
  for (int64_t index : indices) {
    if (index < 0 || index >= static_cast<int64_t>(examples.size())) {
      throw InputError("example index " + std::to_string(index) + " out of range [0, " +
                       std::to_string(examples.size()) + ")");
    }
    append_example(row, examples[index]);
  }
  return row;
}

std::vector<std::vector<int64_t>> plan_packing(const std::vector<int64_t>& lengths,
                                               int64_t capacity) {
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] < 1 || lengths[i] > capacity) {
      throw InputError("example " + std::to_string(i) + " has " + std::to_string(lengths[i]) +
                       " tokens; packing needs 1 to " + std::to_string(capacity));
    }
  }
  std::vector<int64_t> order(lengths.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return lengths[a] > lengths[b]; });
  std::vector<std::vector<int64_t>> bins;
  // Space left -> bin, for bins with space; equal keys keep insertion order (deterministic).
  std::multimap<int64_t, size_t> open;
  for (int64_t index : order) {
    const int64_t length = lengths[index];
    auto fit = open.lower_bound(length);  // the fullest bin it fits in
    size_t bin;
    int64_t left;
    if (fit == open.end()) {
      bin = bins.size();
      bins.emplace_back();
      left = capacity - length;
    } else {
      bin = fit->second;
      left = fit->first - length;
      open.erase(fit);
    }
    bins[bin].push_back(index);
    if (left > 0) open.emplace(left, bin);
  }
  for (auto& bin : bins)
    std::sort(bin.begin(), bin.end());
  return bins;
}

Batch make_batch(const std::vector<PackedRow>& rows, int64_t pad_id) {
  if (rows.empty()) throw InputError("make_batch: no rows");
  Batch batch;
  batch.rows = static_cast<int64_t>(rows.size());
  for (const PackedRow& row : rows) {
    batch.seq_len = std::max(batch.seq_len, static_cast<int64_t>(row.tokens.size()));
  }
  const size_t total = static_cast<size_t>(batch.rows * batch.seq_len);
  batch.tokens.reserve(total);
  batch.positions.reserve(total);
  batch.segments.reserve(total);
  batch.targets.reserve(total);
  for (const PackedRow& row : rows) {
    batch.tokens.insert(batch.tokens.end(), row.tokens.begin(), row.tokens.end());
    batch.positions.insert(batch.positions.end(), row.positions.begin(), row.positions.end());
    batch.segments.insert(batch.segments.end(), row.segments.begin(), row.segments.end());
    batch.targets.insert(batch.targets.end(), row.targets.begin(), row.targets.end());
    const int64_t pad = batch.seq_len - static_cast<int64_t>(row.tokens.size());
    for (int64_t i = 0; i < pad; ++i) {
      batch.tokens.push_back(pad_id);
      batch.positions.push_back(i);
      batch.segments.push_back(row.num_examples);
      batch.targets.push_back(kIgnoreTarget);
    }
    batch.num_examples += row.num_examples;
    batch.num_tokens += static_cast<int64_t>(row.tokens.size());
  }
  batch.num_targets =
      static_cast<int64_t>(std::count_if(batch.targets.begin(), batch.targets.end(),
                                         [](int64_t target) { return target != kIgnoreTarget; }));
  return batch;
}

}  // namespace align
