#include "dpo/pair_data.h"

#include <numeric>

#include "common/error.h"

namespace align {

int64_t PairData::num_units() const {
  return static_cast<int64_t>(token_pairs ? chains.size() : sequences.size());
}

int64_t PairData::num_pairs() const {
  return static_cast<int64_t>(token_pairs ? tokens.size() : sequences.size());
}

PairBatch PairData::batch(const std::vector<int64_t>& units) const {
  return token_pairs ? make_chain_batch(tokens, chains, units, pad_id)
                     : make_sequence_batch(sequences, units, pad_id);
}

PairData load_pair_data(const std::string& path, const LazyChatFormat& chat,
                        const PairDataOptions& opt, const std::string& key) {
  const Tokenizer& tok = chat.tokenizer();
  PairData d;
  d.token_pairs = opt.token_pairs;
  d.pad_id = tok.pad_id().value_or(tok.eos_id().value_or(0));
  if (opt.token_pairs) {
    TokenPairOptions o{opt.max_seq_len, opt.vocab_size, opt.weight};
    TokenPairDataset ds = load_token_pairs(path, o, key);
    d.tokens = std::move(ds.pairs);
    d.with_reference = ds.with_reference;
    d.chains = build_pair_chains(d.tokens);
  } else {
    PreferenceDataset ds =
        load_preference_dataset(path, chat, {opt.max_seq_len, opt.weight, opt.vocab_size}, key);
    d.sequences = std::move(ds.pairs);
    d.truncated = ds.truncated;
    d.with_reference = ds.with_reference;
  }
  return d;
}

PairLoader::PairLoader(const PairData& data, int64_t batch_size, bool shuffle, uint64_t seed)
    : data_(data), batch_size_(batch_size), shuffle_(shuffle), seed_(seed) {
  if (batch_size <= 0) throw InputError("data.batch_size: must be positive");
  if (data.num_units() == 0) throw InputError("no training pairs");
}

int64_t PairLoader::batches_per_epoch() const {
  return (data_.num_units() + batch_size_ - 1) / batch_size_;
}

std::vector<int64_t> PairLoader::next() {
  const int64_t n = data_.num_units();
  if (state_.cursor >= n) {
    ++state_.epoch;
    state_.cursor = 0;
  }
  if (order_epoch_ != state_.epoch) {
    if (shuffle_) {
      order_ = epoch_order(n, seed_, state_.epoch);
    } else {
      order_.resize(static_cast<size_t>(n));
      std::iota(order_.begin(), order_.end(), 0);
    }
    order_epoch_ = state_.epoch;
  }
  const int64_t end = std::min(n, state_.cursor + batch_size_);
  std::vector<int64_t> units(order_.begin() + state_.cursor, order_.begin() + end);
  state_.cursor = end;
  return units;
}

void PairLoader::restore(const BatcherState& s) {
  if (s.epoch < 0 || s.cursor < 0 || s.cursor > data_.num_units()) {
    throw InputError("data position (epoch " + std::to_string(s.epoch) + ", cursor " +
                     std::to_string(s.cursor) + ") does not fit this data set of " +
                     std::to_string(data_.num_units()) + " units");
  }
  state_ = s;
}

}  // namespace align
