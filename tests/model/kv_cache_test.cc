// The KV cache, packed segments and selective logits all reproduce the plain full forward.
#include "model/kv_cache.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "model/phi3_model.h"
#include "tests/model/model_test_util.h"

namespace align {
namespace {

using testing::full_logits;
using testing::max_abs_diff;
using testing::random_tokens;
using testing::token_row;

// Logits are O(10); fp32 results differ from the full forward only by the summation order of
// differently shaped matmuls (~1e-6).
constexpr double kTol = 1e-4;

Phi3Model golden_model(const std::string& name) {
  return Phi3Model::load(testing::golden_model_dir(name), torch::kFloat, torch::kCPU);
}

std::vector<int64_t> slice(const std::vector<int64_t>& v, size_t begin, size_t end) {
  return std::vector<int64_t>(v.begin() + begin, v.begin() + end);
}

// Feeds `ids` through a one-row cache `chunk` tokens at a time; logits [T, V] at every position.
torch::Tensor cached_logits(const Phi3Model& model, const std::vector<int64_t>& ids, size_t chunk,
                            std::vector<int64_t> rope_lengths = {}) {
  KvCache cache = KvCache::allocate(model.config(), 1, static_cast<int64_t>(ids.size()) + 3,
                                    model.dtype(), model.device());
  std::vector<torch::Tensor> out;
  for (size_t i = 0; i < ids.size(); i += chunk) {
    ForwardInput in;
    in.tokens = token_row(slice(ids, i, std::min(ids.size(), i + chunk)));
    in.logits = LogitsAt::kAll;
    in.rope_lengths = rope_lengths;
    out.push_back(model.forward(in, &cache).logits[0]);
  }
  EXPECT_EQ(cache.lengths[0], static_cast<int64_t>(ids.size()));
  return torch::cat(out, 0);
}

class CacheTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CacheTest, PrefillThenDecodeEqualsFullForward) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = golden_model(GetParam());
  // Up to 30 tokens: past the mini model's sliding window (20), short of its longrope switch (32).
  const auto ids = random_tokens(30, model.config().vocab_size, 7);
  const auto full = full_logits(model, ids);
  for (size_t chunk : {size_t{1}, size_t{4}, size_t{7}, size_t{30}}) {
    EXPECT_LT(max_abs_diff(cached_logits(model, ids, chunk), full), kTol) << "chunk " << chunk;
  }
}

TEST_P(CacheTest, RowsOfDifferentLengthsDecodeTogether) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = golden_model(GetParam());
  const int64_t V = model.config().vocab_size;
  std::vector<std::vector<int64_t>> rows = {random_tokens(5, V, 1), random_tokens(12, V, 2),
                                            random_tokens(1, V, 3)};
  KvCache cache = KvCache::allocate(model.config(), 3, 32, torch::kFloat, torch::kCPU);

  // Prefill: right-padded to 12 tokens, logits at each row's last real token.
  ForwardInput prefill;
  prefill.tokens = torch::zeros({3, 12}, torch::kLong);
  for (int64_t b = 0; b < 3; ++b) {
    const auto& r = rows[static_cast<size_t>(b)];
    prefill.tokens[b].narrow(0, 0, static_cast<int64_t>(r.size())).copy_(torch::tensor(r));
    prefill.valid.push_back(static_cast<int64_t>(r.size()));
  }
  auto logits = model.forward(prefill, &cache).logits;  // [3, V]
  for (int64_t b = 0; b < 3; ++b) {
    auto expected = full_logits(model, rows[static_cast<size_t>(b)]);
    EXPECT_LT(max_abs_diff(logits[b], expected[-1]), kTol) << "row " << b;
  }
  EXPECT_EQ(cache.lengths, (std::vector<int64_t>{5, 12, 1}));

  // Decode 8 steps; row 2 sits out steps 3 and 4.
  for (int step = 0; step < 8; ++step) {
    const bool idle2 = step == 3 || step == 4;
    ForwardInput in;
    in.tokens = torch::zeros({3, 1}, torch::kLong);
    for (int64_t b = 0; b < 3; ++b) {
      const int64_t next = random_tokens(1, V, 100 + step * 3 + b)[0];
      in.tokens[b][0] = next;
      if (!(b == 2 && idle2)) rows[static_cast<size_t>(b)].push_back(next);
    }
    in.valid = {1, 1, idle2 ? 0 : 1};
    in.logits = LogitsAt::kAll;
    auto step_logits = model.forward(in, &cache).logits;  // [3, 1, V]
    for (int64_t b = 0; b < 3; ++b) {
      if (b == 2 && idle2) continue;
      auto expected = full_logits(model, rows[static_cast<size_t>(b)]);
      EXPECT_LT(max_abs_diff(step_logits[b][0], expected[-1]), kTol)
          << "step " << step << " row " << b;
    }
  }
  EXPECT_EQ(cache.lengths, (std::vector<int64_t>{13, 20, 7}));
}

TEST_P(CacheTest, PackedSegmentsEqualSeparateSequences) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = golden_model(GetParam());
  const int64_t V = model.config().vocab_size;
  // For the mini model the second sequence is longer than original_max_position_embeddings (32):
  // it uses the long factors while the first keeps the short ones.
  const auto a = random_tokens(21, V, 11), b = random_tokens(36, V, 12);
  std::vector<int64_t> packed = a, positions, segments;
  packed.insert(packed.end(), b.begin(), b.end());
  for (size_t i = 0; i < a.size(); ++i)
    positions.push_back(static_cast<int64_t>(i));
  for (size_t i = 0; i < b.size(); ++i)
    positions.push_back(static_cast<int64_t>(i));
  segments.assign(a.size(), 4);
  segments.insert(segments.end(), b.size(), 9);

  ForwardInput in;
  in.tokens = token_row(packed);
  in.positions = token_row(positions);
  in.segments = token_row(segments);
  in.logits = LogitsAt::kAll;
  auto logits = model.forward(in).logits[0];
  const int64_t na = static_cast<int64_t>(a.size()), nb = static_cast<int64_t>(b.size());
  EXPECT_LT(max_abs_diff(logits.narrow(0, 0, na), full_logits(model, a)), kTol);
  EXPECT_LT(max_abs_diff(logits.narrow(0, na, nb), full_logits(model, b)), kTol);
}

TEST_P(CacheTest, LogitsOnlyWhereAsked) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = golden_model(GetParam());
  const int64_t V = model.config().vocab_size, T = 9;
  ForwardInput in;
  in.tokens = torch::cat({token_row(random_tokens(T, V, 21)), token_row(random_tokens(T, V, 22))});
  in.valid = {T, 4};
  in.logits = LogitsAt::kAll;
  in.return_hidden = true;
  auto all = model.forward(in);  // logits [2, T, V]
  ASSERT_EQ(all.logits.sizes(), (std::vector<int64_t>{2, T, V}));

  in.return_hidden = false;
  in.logits = LogitsAt::kLast;
  auto last = model.forward(in).logits;  // [2, V]
  EXPECT_LT(max_abs_diff(last[0], all.logits[0][T - 1]), 1e-5);
  EXPECT_LT(max_abs_diff(last[1], all.logits[1][3]), 1e-5);

  in.logits = LogitsAt::kIndex;
  in.logits_index = torch::tensor(std::vector<int64_t>{2, T + 5, 2 * T - 1}, torch::kLong);
  auto picked = model.forward(in).logits;  // [3, V]
  auto flat = all.logits.view({2 * T, V});
  EXPECT_LT(max_abs_diff(picked, flat.index_select(0, in.logits_index)), 1e-5);

  in.logits = LogitsAt::kNone;
  EXPECT_FALSE(model.forward(in).logits.defined());
  EXPECT_LT(max_abs_diff(model.logits(all.hidden), all.logits), 1e-5);
}

TEST_P(CacheTest, GreedyDecodingMatchesTransformersGenerate) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = golden_model(GetParam());
  const auto record = testing::golden_record(GetParam());
  ASSERT_FALSE(record["greedy"].empty());
  for (const auto& g : record["greedy"]) {
    auto seq = g["prompt"].get<std::vector<int64_t>>();
    const auto expected = g["fp32"].get<std::vector<int64_t>>();
    const size_t prompt_len = seq.size();
    KvCache cache = KvCache::allocate(model.config(), 1, 64, torch::kFloat, torch::kCPU);
    ForwardInput in;
    in.tokens = token_row(seq);
    auto logits = model.forward(in, &cache).logits;
    int reprefills = 0;
    while (seq.size() < prompt_len + expected.size()) {
      seq.push_back(logits[0].argmax().item<int64_t>());
      if (seq.size() == prompt_len + expected.size()) break;
      const int64_t seq_len = static_cast<int64_t>(seq.size());
      if (needs_reprefill(model.config(), cache, 0, seq_len)) {
        // Longrope switched to the long factors: recompute the whole row, as generate() does.
        cache.reset(0);
        in.tokens = token_row(seq);
        ++reprefills;
      } else {
        in.tokens = token_row({seq.back()});
      }
      logits = model.forward(in, &cache).logits;
    }
    EXPECT_EQ(slice(seq, prompt_len, seq.size()), expected);
    if (GetParam() == "mini_tiny" && prompt_len + expected.size() > 33) {
      EXPECT_EQ(reprefills, 1);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Golden, CacheTest, ::testing::Values("phi4_tiny", "mini_tiny"));

TEST(Longrope, CrossingTheSwitchWithACacheThrowsUnlessTheLengthIsGiven) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = golden_model("mini_tiny");
  const auto ids = random_tokens(40, model.config().vocab_size, 31);
  // Without rope_lengths the first chunk is cached with the short factors; the chunk that takes
  // the sequence past 32 tokens needs the long ones.
  KvCache cache = KvCache::allocate(model.config(), 1, 48, torch::kFloat, torch::kCPU);
  ForwardInput in;
  in.tokens = token_row(slice(ids, 0, 30));
  model.forward(in, &cache);
  EXPECT_FALSE(needs_reprefill(model.config(), cache, 0, 32));
  EXPECT_TRUE(needs_reprefill(model.config(), cache, 0, 33));
  in.tokens = token_row(slice(ids, 30, 40));
  EXPECT_THROW(model.forward(in, &cache), Error);

  // Chunked prefill that knows the final length uses the long factors from the start.
  const auto full = full_logits(model, ids);
  EXPECT_LT(max_abs_diff(cached_logits(model, ids, 6, {40}), full), kTol);
  EXPECT_LT(max_abs_diff(cached_logits(model, ids, 1, {40}), full), kTol);
}

TEST(Longrope, ShortAndLongFactorsGiveDifferentResults) {
  torch::NoGradGuard no_grad;
  const Phi3Model model = golden_model("mini_tiny");
  const auto ids = random_tokens(20, model.config().vocab_size, 41);
  ForwardInput in;
  in.tokens = token_row(ids);
  in.logits = LogitsAt::kAll;
  auto short_logits = model.forward(in).logits;
  in.rope_lengths = {33};
  auto long_logits = model.forward(in).logits;
  EXPECT_GT(max_abs_diff(short_logits, long_logits), 1e-2);
}

TEST(KvCache, AllocatesAndResets) {
  const ModelConfig config = model_preset("tiny");
  KvCache cache = KvCache::allocate(config, 3, 16, torch::kBFloat16, torch::kCPU);
  EXPECT_EQ(cache.batch(), 3);
  EXPECT_EQ(cache.capacity(), 16);
  EXPECT_EQ(cache.k.size(), static_cast<size_t>(config.num_layers));
  EXPECT_EQ(cache.k[0].sizes(), (std::vector<int64_t>{3, config.num_kv_heads, 16, 16}));
  EXPECT_EQ(cache.bytes(), 2 * config.num_layers * 3 * config.kv_size * 16 * 2);
  cache.lengths = {4, 5, 6};
  cache.reset(1);
  EXPECT_EQ(cache.lengths, (std::vector<int64_t>{4, 0, 6}));
  cache.reset_all();
  EXPECT_EQ(cache.lengths, (std::vector<int64_t>{0, 0, 0}));
  EXPECT_THROW(KvCache::allocate(config, 0, 16, torch::kFloat, torch::kCPU), InputError);
}

}  // namespace
}  // namespace align
