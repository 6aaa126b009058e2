// Batching: every example once per epoch in every mode, rows within max_seq_len, padding-free rows
// equal to the concatenation, and exact resumption from a saved (epoch, cursor).
#include "data/batcher.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "common/error.h"

namespace align {
namespace {

using Ids = std::vector<int64_t>;

// Example k: ids 1000k, 1000k+1, ... (the first id names it), lengths 1..max_len in a fixed
// pattern, every second token a target.
std::vector<SftExample> make_examples(int n, int max_len) {
  std::vector<SftExample> examples(n);
  for (int k = 0; k < n; ++k) {
    const int length = 1 + (k * 7 + 3) % max_len;
    for (int i = 0; i < length; ++i) {
      examples[k].ids.push_back(1000 * k + i);
      examples[k].loss_mask.push_back(i % 2);
    }
  }
  return examples;
}

// The examples of a batch, in order, after checking each against its source.
std::vector<int64_t> examples_in(const Batch& batch, const std::vector<SftExample>& examples,
                                 int64_t pad_id) {
  std::vector<int64_t> found;
  int64_t targets = 0;
  for (int64_t r = 0; r < batch.rows; ++r) {
    const int64_t base = r * batch.seq_len;
    int64_t t = 0, slot = 0;
    while (t < batch.seq_len && batch.segments[base + t] == slot &&
           batch.tokens[base + t] % 1000 == 0 && batch.positions[base + t] == 0) {
      const int64_t k = batch.tokens[base + t] / 1000;
      const SftExample& ex = examples.at(k);
      for (size_t i = 0; i < ex.ids.size(); ++i, ++t) {
        EXPECT_EQ(batch.tokens[base + t], ex.ids[i]);
        EXPECT_EQ(batch.positions[base + t], static_cast<int64_t>(i));
        EXPECT_EQ(batch.segments[base + t], slot);
        const bool target = i + 1 < ex.ids.size() && ex.loss_mask[i + 1] == 1;
        EXPECT_EQ(batch.targets[base + t], target ? ex.ids[i + 1] : kIgnoreTarget);
        targets += target ? 1 : 0;
      }
      found.push_back(k);
      ++slot;
    }
    for (; t < batch.seq_len; ++t) {  // padding
      EXPECT_EQ(batch.tokens[base + t], pad_id);
      EXPECT_EQ(batch.segments[base + t], slot);
      EXPECT_EQ(batch.targets[base + t], kIgnoreTarget);
    }
  }
  EXPECT_EQ(batch.num_targets, targets);
  EXPECT_EQ(batch.num_examples, static_cast<int64_t>(found.size()));
  return found;
}

struct Mode {
  bool packing, padding_free;
  int64_t rows_per_batch;
};

const Mode kModes[] = {{true, false, 1},  {true, false, 3},  {true, true, 2},
                       {false, false, 1}, {false, false, 4}, {false, true, 3}};

BatcherOptions options(const Mode& mode, uint64_t seed = 5) {
  BatcherOptions opt;
  opt.max_seq_len = 16;
  opt.rows_per_batch = mode.rows_per_batch;
  opt.packing = mode.packing;
  opt.padding_free = mode.padding_free;
  opt.seed = seed;
  opt.pad_id = 99;
  return opt;
}

TEST(Batcher, EveryExampleOncePerEpochInEveryMode) {
  const std::vector<SftExample> examples = make_examples(37, 16);
  for (const Mode& mode : kModes) {
    SCOPED_TRACE(::testing::Message() << "packing " << mode.packing << ", padding_free "
                                      << mode.padding_free << ", rows " << mode.rows_per_batch);
    const BatcherOptions opt = options(mode);
    Batcher batcher(examples, opt);
    const int64_t per_epoch = batcher.batches_per_epoch();
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      std::vector<int> seen(examples.size(), 0);
      for (int64_t b = 0; b < per_epoch; ++b) {
        const Batch batch = batcher.next();
        EXPECT_EQ(batcher.state().epoch, epoch);
        if (mode.padding_free) {
          EXPECT_EQ(batch.rows, 1);
          EXPECT_LE(batch.seq_len, opt.rows_per_batch * opt.max_seq_len);
        } else {
          EXPECT_LE(batch.rows, opt.rows_per_batch);
          EXPECT_LE(batch.seq_len, opt.max_seq_len);
        }
        if (!mode.packing && !mode.padding_free) {
          // One example per row, padded to the longest in the batch.
          EXPECT_EQ(batch.num_examples, batch.rows);
          int64_t longest = 0;
          for (int64_t k : examples_in(batch, examples, opt.pad_id)) {
            longest = std::max(longest, static_cast<int64_t>(examples[k].ids.size()));
          }
          EXPECT_EQ(batch.seq_len, longest);
        }
        for (int64_t k : examples_in(batch, examples, opt.pad_id))
          ++seen[k];
      }
      for (size_t k = 0; k < examples.size(); ++k)
        EXPECT_EQ(seen[k], 1) << "example " << k;
      EXPECT_EQ(batcher.state().cursor, batcher.num_units());
    }
  }
}

TEST(Batcher, PackingFillsRows) {
  // 40 examples of 1..16 tokens (sum 340): best-fit decreasing needs few rows of 16.
  const std::vector<SftExample> examples = make_examples(40, 16);
  int64_t total = 0;
  for (const auto& ex : examples)
    total += static_cast<int64_t>(ex.ids.size());
  Batcher batcher(examples, options({true, false, 1}));
  EXPECT_GE(batcher.num_units(), (total + 15) / 16);
  EXPECT_LE(batcher.num_units(), (total + 15) / 16 + 2);
  EXPECT_EQ(batcher.batches_per_epoch(), batcher.num_units());
}

TEST(Batcher, PaddingFreeRowIsTheConcatenation) {
  const std::vector<SftExample> examples = make_examples(10, 16);
  BatcherOptions opt = options({false, true, 3});
  opt.shuffle = false;
  Batcher free(examples, opt);
  opt.padding_free = false;
  Batcher padded(examples, opt);
  EXPECT_EQ(free.batches_per_epoch(), 4);  // 3 + 3 + 3 + 1
  for (int64_t b = 0; b < free.batches_per_epoch(); ++b) {
    const Batch row = free.next();
    const Batch rows = padded.next();
    const PackedRow expected =
        pack_examples(examples, b < 3 ? Ids{3 * b, 3 * b + 1, 3 * b + 2} : Ids{9});
    EXPECT_EQ(row.rows, 1);
    EXPECT_EQ(row.tokens, expected.tokens);
    EXPECT_EQ(row.positions, expected.positions);
    EXPECT_EQ(row.segments, expected.segments);
    EXPECT_EQ(row.targets, expected.targets);
    // The padded batch holds the same examples; without its padding it is the same row.
    Ids tokens, targets;
    for (int64_t r = 0; r < rows.rows; ++r) {
      for (int64_t t = 0; t < rows.seq_len; ++t) {
        const int64_t i = r * rows.seq_len + t;
        if (rows.segments[i] != 0) break;  // padding
        tokens.push_back(rows.tokens[i]);
        targets.push_back(rows.targets[i]);
      }
    }
    EXPECT_EQ(tokens, row.tokens);
    EXPECT_EQ(targets, row.targets);
    EXPECT_EQ(rows.num_targets, row.num_targets);
  }
}

std::vector<Batch> take(Batcher& batcher, int n) {
  std::vector<Batch> out;
  for (int i = 0; i < n; ++i)
    out.push_back(batcher.next());
  return out;
}

void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(a[i].rows, b[i].rows);
    EXPECT_EQ(a[i].seq_len, b[i].seq_len);
    EXPECT_EQ(a[i].tokens, b[i].tokens);
    EXPECT_EQ(a[i].positions, b[i].positions);
    EXPECT_EQ(a[i].segments, b[i].segments);
    EXPECT_EQ(a[i].targets, b[i].targets);
    EXPECT_EQ(a[i].num_targets, b[i].num_targets);
    EXPECT_EQ(a[i].num_examples, b[i].num_examples);
  }
}

TEST(Batcher, RestoredBatcherContinuesIdentically) {
  const std::vector<SftExample> examples = make_examples(23, 16);
  for (const Mode& mode : kModes) {
    const BatcherOptions opt = options(mode);
    Batcher a(examples, opt);
    const int64_t per_epoch = a.batches_per_epoch();
    take(a, static_cast<int>(per_epoch + per_epoch / 2));  // midway through epoch 1
    const BatcherState saved = a.state();
    EXPECT_EQ(saved.epoch, 1);
    const nlohmann::json json = to_json(saved);
    const std::vector<Batch> expected = take(a, static_cast<int>(2 * per_epoch));

    // A fresh batcher, and one that has been elsewhere first, both restored from the JSON.
    Batcher fresh(examples, opt);
    fresh.restore(batcher_state_from_json(json, "state.json"));
    expect_same(take(fresh, static_cast<int>(2 * per_epoch)), expected);
    Batcher elsewhere(examples, opt);
    take(elsewhere, static_cast<int>(3 * per_epoch + 1));
    elsewhere.restore(batcher_state_from_json(nlohmann::json::parse(json.dump()), "state.json"));
    expect_same(take(elsewhere, static_cast<int>(2 * per_epoch)), expected);
  }
}

TEST(Batcher, EpochsReshuffleReproducibly) {
  const std::vector<SftExample> examples = make_examples(30, 16);
  const BatcherOptions opt = options({false, false, 2});
  Batcher a(examples, opt), b(examples, opt);
  const int per_epoch = static_cast<int>(a.batches_per_epoch());
  const auto a0 = take(a, per_epoch), a1 = take(a, per_epoch);
  expect_same(take(b, 2 * per_epoch), [&] {
    auto both = a0;
    both.insert(both.end(), a1.begin(), a1.end());
    return both;
  }());
  auto order = [&](const std::vector<Batch>& batches) {
    std::vector<int64_t> out;
    for (const Batch& batch : batches) {
      for (int64_t k : examples_in(batch, examples, opt.pad_id))
        out.push_back(k);
    }
    return out;
  };
  EXPECT_NE(order(a0), order(a1));
  // Jumping straight to epoch 1 gives epoch 1's batches.
  Batcher c(examples, opt);
  c.restore({1, 0});
  EXPECT_EQ(order(take(c, per_epoch)), order(a1));
  // Another seed, another order; no shuffle, file order.
  Batcher other(examples, options({false, false, 2}, /*seed=*/6));
  EXPECT_NE(order(take(other, per_epoch)), order(a0));
  BatcherOptions plain = opt;
  plain.shuffle = false;
  Batcher in_order(examples, plain);
  std::vector<int64_t> identity(examples.size());
  for (size_t k = 0; k < identity.size(); ++k)
    identity[k] = static_cast<int64_t>(k);
  EXPECT_EQ(order(take(in_order, per_epoch)), identity);
}

TEST(Batcher, EpochOrderIsAFixedPermutation) {
  // Pinned values: the shuffle must not change between platforms or releases, or resumed runs
  // would see other data.
  EXPECT_EQ(epoch_order(8, 0, 0), epoch_order(8, 0, 0));
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    Ids order = epoch_order(100, 42, epoch);
    std::set<int64_t> values(order.begin(), order.end());
    EXPECT_EQ(values.size(), 100u);
    EXPECT_EQ(*values.begin(), 0);
    EXPECT_EQ(*values.rbegin(), 99);
  }
  EXPECT_NE(epoch_order(100, 42, 0), epoch_order(100, 42, 1));
  EXPECT_NE(epoch_order(100, 42, 0), epoch_order(100, 43, 0));
  EXPECT_EQ(epoch_order(1, 7, 3), Ids{0});
  EXPECT_TRUE(epoch_order(0, 7, 3).empty());
  // Values from an independent Python transcription of splitmix64 + Fisher-Yates.
  EXPECT_EQ(epoch_order(8, 0, 0), (Ids{1, 0, 6, 4, 3, 5, 2, 7}));
  EXPECT_EQ(epoch_order(8, 0, 1), (Ids{0, 5, 2, 7, 3, 4, 1, 6}));
  EXPECT_EQ(epoch_order(8, 1, 0), (Ids{7, 5, 3, 1, 4, 2, 0, 6}));
}

TEST(Batcher, StateJsonIsValidated) {
  EXPECT_EQ(to_json({3, 17}), nlohmann::json::parse(R"({"epoch": 3, "cursor": 17})"));
  const BatcherState state = batcher_state_from_json(to_json({3, 17}), "s.json");
  EXPECT_EQ(state.epoch, 3);
  EXPECT_EQ(state.cursor, 17);
  const std::pair<const char*, const char*> bad[] = {
      {R"([])", "s.json: expected an object"},
      {R"({"epoch": 1})", "s.json: cursor: missing"},
      {R"({"epoch": -1, "cursor": 0})", "s.json: epoch: expected a non-negative integer"},
      {R"({"epoch": 1, "cursor": "2"})", "s.json: cursor: expected a non-negative integer"},
      {R"({"epoch": 1, "cursor": 2.5})", "s.json: cursor: expected a non-negative integer"},
      {R"({"epoch": 1, "cursor": 2, "seed": 0})", "s.json: seed: unknown key"},
  };
  for (const auto& [text, expected] : bad) {
    try {
      batcher_state_from_json(nlohmann::json::parse(text), "s.json");
      ADD_FAILURE() << text;
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

TEST(Batcher, RejectsBadInput) {
  const std::vector<SftExample> examples = make_examples(5, 16);
  Batcher batcher(examples, options({true, false, 1}));
  EXPECT_THROW(batcher.restore({0, batcher.num_units() + 1}), InputError);
  EXPECT_THROW(batcher.restore({-1, 0}), InputError);
  batcher.restore({2, batcher.num_units()});  // end of epoch 2: the next batch starts epoch 3
  batcher.next();
  EXPECT_EQ(batcher.state().epoch, 3);

  BatcherOptions short_rows = options({true, false, 1});
  short_rows.max_seq_len = 8;  // examples go up to 16 tokens
  EXPECT_THROW(Batcher(examples, short_rows), InputError);
  BatcherOptions no_rows = options({true, false, 1});
  no_rows.rows_per_batch = 0;
  EXPECT_THROW(Batcher(examples, no_rows), InputError);
  const std::vector<SftExample> none;
  EXPECT_THROW(Batcher(none, options({true, false, 1})), InputError);
}

}  // namespace
}  // namespace align
