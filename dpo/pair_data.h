// The DPO training data as units the loader shuffles: one sequence pair per unit (format
// "sequence"), or one prefix chain of token pairs per unit (format "token", one completion's
// pivots, scored in one forward). A micro-batch is the next batch_size units of the epoch's order
// (data/batcher.h's epoch_order, so the same (seed, epoch, cursor) always gives the same batches
// and a resumed run continues exactly).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/batcher.h"
#include "data/preference_dataset.h"
#include "data/token_pairs.h"
#include "data/tokenizer.h"
#include "dpo/pair_scoring.h"

namespace align {

struct PairDataOptions {
  bool token_pairs = false;  // data.format == "token"
  int64_t max_seq_len = 2048;
  PairWeight weight = PairWeight::kNone;
  int64_t vocab_size =
      0;  // the model's: every id must be below it (data/token_range.h); 0: unchecked
};

struct PairData {
  bool token_pairs = false;
  std::vector<PreferencePair> sequences;  // format "sequence"
  std::vector<TokenPair> tokens;          // format "token"
  std::vector<PairChain> chains;          // over `tokens`
  int64_t truncated = 0;
  int64_t with_reference = 0;
  int64_t pad_id = 0;

  int64_t num_units() const;  // pairs or chains
  int64_t num_pairs() const;
  bool has_reference() const { return with_reference > 0; }
  PairBatch batch(const std::vector<int64_t>& units) const;
};

// `source`: a JSONL file, Parquet or a hub dataset id (data/dataset_records.h), which `key`
// ("data.train", "data.eval") names in errors.
PairData load_pair_data(const std::string& source, const LazyChatFormat& chat,
                        const PairDataOptions& opt, const std::string& key);

class PairLoader {
 public:
  PairLoader(const PairData& data, int64_t batch_size, bool shuffle, uint64_t seed);
  // Unit indices of the next micro-batch (never crossing an epoch end; the last one may be short).
  std::vector<int64_t> next();
  BatcherState state() const { return state_; }
  void restore(const BatcherState& state);  // throws InputError for a cursor out of range
  int64_t batches_per_epoch() const;

 private:
  const PairData& data_;
  int64_t batch_size_;
  bool shuffle_;
  uint64_t seed_;
  BatcherState state_;
  std::vector<int64_t> order_;
  int64_t order_epoch_ = -1;
};

}  // namespace align
