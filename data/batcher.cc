#include "data/batcher.h"

#include <algorithm>
#include <limits>
#include <numeric>

#include "common/error.h"
#include "common/seeding.h"
#include "data/json_fields.h"

namespace align {

namespace {

// Uniform in [0, bound) by rejection, so no modulo bias.
uint64_t uniform_below(uint64_t& state, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // 2^64 mod bound
  for (;;) {
    const uint64_t r = splitmix64_next(state);
    if (r >= threshold) return r % bound;
  }
}

void check_options(const BatcherOptions& opt) {
  if (opt.max_seq_len < 1) {
    throw InputError("max_seq_len: expected at least 1, got " + std::to_string(opt.max_seq_len));
  }
  if (opt.rows_per_batch < 1) {
    throw InputError("rows_per_batch: expected at least 1, got " +
                     std::to_string(opt.rows_per_batch));
  }
  if (opt.max_seq_len > std::numeric_limits<int64_t>::max() / opt.rows_per_batch) {
    throw InputError("rows_per_batch * max_seq_len overflows");
  }
}

}  // namespace

std::vector<int64_t> epoch_order(int64_t n, uint64_t seed, int64_t epoch) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  uint64_t epoch_state = static_cast<uint64_t>(epoch);
  uint64_t state = seed ^ splitmix64_next(epoch_state);
  for (int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<int64_t>(uniform_below(state, static_cast<uint64_t>(i) + 1));
    std::swap(order[i], order[j]);
  }
  return order;
}

Batcher::Batcher(const std::vector<SftExample>& examples, BatcherOptions opt)
    : examples_(examples), opt_(opt) {
  check_options(opt_);
  if (examples_.empty()) throw InputError("batcher: no examples");
  std::vector<int64_t> lengths(examples_.size());
  for (size_t i = 0; i < examples_.size(); ++i) {
    lengths[i] = static_cast<int64_t>(examples_[i].ids.size());
    if (lengths[i] < 1 || lengths[i] > opt_.max_seq_len) {
      throw InputError(
          "example " + std::to_string(i) + " has " + std::to_string(lengths[i]) +
          " tokens; the batcher takes 1 to max_seq_len = " + std::to_string(opt_.max_seq_len) +
          " (load the dataset with the same max_seq_len)");
    }
    if (examples_[i].loss_mask.size() != examples_[i].ids.size()) {
      throw InputError("example " + std::to_string(i) + ": loss_mask and ids differ in length");
    }
  }
  if (opt_.packing) {
    const int64_t capacity =
        opt_.padding_free ? opt_.rows_per_batch * opt_.max_seq_len : opt_.max_seq_len;
    units_ = plan_packing(lengths, capacity);
    units_per_batch_ = opt_.padding_free ? 1 : opt_.rows_per_batch;
  } else {
    units_.resize(examples_.size());
    for (size_t i = 0; i < examples_.size(); ++i)
      units_[i] = {static_cast<int64_t>(i)};
    units_per_batch_ = opt_.rows_per_batch;
  }
}

void Batcher::ensure_order() {
  if (order_epoch_ == state_.epoch) return;
  if (opt_.shuffle) {
    order_ = epoch_order(num_units(), opt_.seed, state_.epoch);
  } else {
    order_.resize(units_.size());
    std::iota(order_.begin(), order_.end(), 0);
  }
  order_epoch_ = state_.epoch;
}

Batch Batcher::next() {
  if (state_.cursor >= num_units()) state_ = {state_.epoch + 1, 0};
  ensure_order();
  const int64_t end = std::min(num_units(), state_.cursor + units_per_batch_);
  std::vector<PackedRow> rows;
  for (int64_t k = state_.cursor; k < end; ++k) {
    const std::vector<int64_t>& unit = units_[order_[k]];
    if (opt_.padding_free && !rows.empty()) {
      for (int64_t index : unit)
        append_example(rows.back(), examples_[index]);
    } else {
      rows.push_back(pack_examples(examples_, unit));
    }
  }
  state_.cursor = end;
  return make_batch(rows, opt_.pad_id);
}

void Batcher::restore(const BatcherState& state) {
  if (state.epoch < 0 || state.cursor < 0 || state.cursor > num_units()) {
    throw InputError("batcher state: expected epoch >= 0 and cursor in [0, " +
                     std::to_string(num_units()) + "], got epoch " + std::to_string(state.epoch) +
                     ", cursor " + std::to_string(state.cursor) +
                     " (was it saved with other data or batcher options?)");
  }
  state_ = state;
}

int64_t Batcher::batches_per_epoch() const {
  return (num_units() + units_per_batch_ - 1) / units_per_batch_;
}

nlohmann::json to_json(const BatcherState& state) {
  return {{"epoch", state.epoch}, {"cursor", state.cursor}};
}

BatcherState batcher_state_from_json(const nlohmann::json& json, const std::string& source) {
  const JsonPath at{source, ""};
  if (!json.is_object()) throw_json_error(at, "expected an object, got " + describe_json(json));
  for (const auto& item : json.items()) {
    if (item.key() != "epoch" && item.key() != "cursor") {
      throw_json_error(at / item.key(), "unknown key (expected \"epoch\" and \"cursor\")");
    }
  }
  auto count = [&](const char* key) -> int64_t {
    const nlohmann::json& value = json_member(json, key, at);
    if (value.is_number_unsigned() &&
        value.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return value.get<int64_t>();
    }
    if (value.is_number_integer() && value.get<int64_t>() >= 0) return value.get<int64_t>();
    throw_json_error(at / key, "expected a non-negative integer, got " + describe_json(value));
  };
  return {count("epoch"), count("cursor")};
}

}  // namespace align
