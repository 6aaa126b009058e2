// Micro-batches of SFT examples, shuffled per epoch, with a cursor that resumes exactly.
//
// The examples are grouped once into units, and each epoch visits the units in an order drawn
// from (seed, epoch) alone; a batch is the next few units of that order, never crossing into the
// next epoch (the last batch of an epoch may be smaller):
//
//   packing  padding_free  unit                                         batch
//   yes      no            a row: examples packed (plan_packing) up to  rows_per_batch units,
//                          max_seq_len tokens                           padded to the longest
//   yes      yes           examples packed up to                        1 unit as ONE row
//                          rows_per_batch * max_seq_len tokens          (B = 1, no padding)
//   no       no            one example                                  rows_per_batch units,
//                                                                       padded to the longest
//   no       yes           one example                                  rows_per_batch units
//                                                                       concatenated in ONE row
//
// Packing is planned once, as TRL packs the dataset before training: which examples share a row is
// fixed, the order of rows changes each epoch, and batches_per_epoch() is the same every epoch.
// The same (seed, epoch, cursor) always gives the same batches, whatever came before.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/packing.h"
#include "data/sft_dataset.h"

namespace align {

struct BatcherOptions {
  int64_t max_seq_len = 2048;  // tokens per row (packed and padded modes); examples must fit
  int64_t rows_per_batch = 1;  // micro-batch rows
  bool packing = true;         // false: one example per row, padded to the longest in the batch
  bool padding_free = false;   // one concatenated row per micro-batch of up to
                               // rows_per_batch * max_seq_len tokens
  bool shuffle = true;
  uint64_t seed = 0;
  int64_t pad_id = 0;
};

// Where the batcher stands: the epoch and the next unit of that epoch's order (in [0, units]).
struct BatcherState {
  int64_t epoch = 0;
  int64_t cursor = 0;
};

class Batcher {
 public:
  // Keeps a reference to `examples`, which must outlive the batcher and not change. Throws
  // InputError for no examples, bad options, or an example longer than max_seq_len (load the
  // dataset with the same max_seq_len) or with fewer than 1 token.
  Batcher(const std::vector<SftExample>& examples, BatcherOptions opt);

  // The next micro-batch; after the epoch's last one, starts the next epoch.
  Batch next();

  BatcherState state() const { return state_; }
  // Throws InputError for a negative epoch or a cursor outside [0, units].
  void restore(const BatcherState& state);

  int64_t batches_per_epoch() const;
  int64_t num_units() const { return static_cast<int64_t>(units_.size()); }

 private:
  void ensure_order();

  const std::vector<SftExample>& examples_;
  BatcherOptions opt_;
  std::vector<std::vector<int64_t>> units_;  // example indices of each unit
  int64_t units_per_batch_ = 1;
  BatcherState state_;
  std::vector<int64_t> order_;  // permutation of units for order_epoch_
  int64_t order_epoch_ = -1;
};

// The order in which epoch `epoch` visits n units: a Fisher-Yates shuffle driven by splitmix64
// seeded from (seed, epoch), identical on every platform.
std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch);

// {"epoch": e, "cursor": c}
nlohmann::json to_json(const BatcherState& state);
// Throws InputError "<source>: cursor: ..." for a missing, unknown or non-integer field.
BatcherState batcher_state_from_json(const nlohmann::json& json, const std::string& source);

}  // namespace align
