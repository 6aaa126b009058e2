// The paged KV cache's bookkeeping (ref counts, copy-on-write, freeing, budget) and the paged
// forward against Phi3Model::forward without a cache.
#include "rollout/paged_kv_cache.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "model/config.h"
#include "rollout/paged_forward.h"
#include "tests/model/model_test_util.h"

namespace align {
namespace {

using testing::max_abs_diff;
using testing::random_tokens;

ModelConfig tiny_config() {
  return load_model_config(testing::golden_model_dir("phi4_tiny"));
}

// Fills slots of token t (all layers) with the value `value`.
void write_token(PagedKvCache& cache, int64_t seq, int64_t t, float value) {
  const int64_t slot = cache.slot(seq, t);
  for (size_t l = 0; l < cache.k.size(); ++l) {
    cache.k[l].view({-1, cache.k[l].size(2), cache.k[l].size(3)})[slot].fill_(value);
    cache.v[l].view({-1, cache.v[l].size(2), cache.v[l].size(3)})[slot].fill_(-value);
  }
}

float read_token(const PagedKvCache& cache, int64_t seq, int64_t t, size_t layer = 1) {
  const int64_t slot = cache.slot(seq, t);
  const auto& k = cache.k[layer];
  return k.view({-1, k.size(2), k.size(3)})[slot][0][0].item<float>();
}

TEST(PagedKvCache, ForkSharesPagesAndReleaseFreesThem) {
  PagedKvCache cache(tiny_config(), 8, 4, torch::kFloat, torch::kCPU);
  EXPECT_EQ(cache.free_pages(), 8);
  const int64_t a = cache.create();
  cache.append(a, 9);  // 3 pages
  EXPECT_EQ(cache.length(a), 9);
  EXPECT_EQ(cache.page_table(a).size(), 3u);
  EXPECT_EQ(cache.free_pages(), 5);
  EXPECT_EQ(cache.allocated(a), 3);
  const int64_t b = cache.fork(a), c = cache.fork(a);
  EXPECT_EQ(cache.page_table(b), cache.page_table(a));
  EXPECT_EQ(cache.length(c), 9);
  EXPECT_EQ(cache.allocated(b), 0);
  for (int64_t p : cache.page_table(a))
    EXPECT_EQ(cache.ref_count(p), 3);
  EXPECT_EQ(cache.free_pages(), 5);
  cache.release(a);
  for (int64_t p : cache.page_table(b))
    EXPECT_EQ(cache.ref_count(p), 2);
  cache.release(b);
  EXPECT_EQ(cache.free_pages(), 5);
  cache.release(c);
  EXPECT_EQ(cache.free_pages(), 8);
  EXPECT_EQ(cache.num_sequences(), 0);
  EXPECT_THROW(cache.length(a), Error);
}

TEST(PagedKvCache, CopyOnWriteOfASharedPartialPage) {
  PagedKvCache cache(tiny_config(), 8, 4, torch::kFloat, torch::kCPU);
  const int64_t a = cache.create();
  cache.append(a, 6);  // page 0 full, page 1 holds 2 tokens
  for (int64_t t = 0; t < 6; ++t)
    write_token(cache, a, t, static_cast<float>(t + 1));
  const int64_t b = cache.fork(a);
  const int64_t shared_last = cache.page_table(a)[1];
  EXPECT_EQ(cache.pages_to_append(b, 1), 1);  // copy of the partial page
  cache.append(b, 1);
  EXPECT_EQ(cache.allocated(b), 1);
  EXPECT_EQ(cache.page_table(b)[0], cache.page_table(a)[0]);  // full page still shared
  EXPECT_NE(cache.page_table(b)[1], shared_last);
  EXPECT_EQ(cache.ref_count(cache.page_table(a)[0]), 2);
  EXPECT_EQ(cache.ref_count(shared_last), 1);
  for (int64_t t = 0; t < 6; ++t)
    EXPECT_EQ(read_token(cache, b, t), static_cast<float>(t + 1)) << t;  // copied
  write_token(cache, b, 6, 100.0f);
  // a's page is its own again: it appends in place, without a copy, and b's token is not there.
  EXPECT_EQ(cache.pages_to_append(a, 1), 0);
  cache.append(a, 1);
  EXPECT_EQ(cache.page_table(a)[1], shared_last);
  write_token(cache, a, 6, 7.0f);
  EXPECT_EQ(read_token(cache, b, 6), 100.0f);
  EXPECT_EQ(read_token(cache, a, 6), 7.0f);
  // A full last page needs no copy: the fork starts a fresh page.
  const int64_t c = cache.fork(b);
  cache.append(c, 1);  // b has 7 tokens: partial -> copy
  const int64_t d = cache.create();
  cache.append(d, 4);
  const int64_t e = cache.fork(d);
  EXPECT_EQ(cache.pages_to_append(e, 1), 1);
  cache.append(e, 1);
  EXPECT_EQ(cache.page_table(e)[0], cache.page_table(d)[0]);
  EXPECT_EQ(cache.ref_count(cache.page_table(d)[0]), 2);
}

TEST(PagedKvCache, BudgetIsEnforcedWithoutSideEffects) {
  PagedKvCache cache(tiny_config(), 3, 4, torch::kFloat, torch::kCPU);
  const int64_t a = cache.create();
  cache.append(a, 10);  // 3 pages: full
  EXPECT_EQ(cache.free_pages(), 0);
  EXPECT_THROW(cache.append(a, 3), Error);  // needs a 4th page
  EXPECT_EQ(cache.length(a), 10);
  cache.append(a, 2);  // fits in the last page
  EXPECT_EQ(cache.length(a), 12);
  const int64_t b = cache.fork(a);
  EXPECT_THROW(cache.append(b, 1), Error);
  EXPECT_EQ(cache.length(b), 12);
  cache.release(a);
  EXPECT_EQ(cache.free_pages(), 0);  // b still holds every page
  cache.truncate(b, 5);              // drops the third page
  EXPECT_EQ(cache.free_pages(), 1);
  EXPECT_EQ(cache.pages_to_append(b, 3), 0);  // b owns its partial page alone
  cache.release(b);
  EXPECT_EQ(cache.free_pages(), 3);
}

TEST(PagedKvCache, BatchPageCountIsExact) {
  PagedKvCache cache(tiny_config(), 8, 4, torch::kFloat, torch::kCPU);
  const int64_t a = cache.create();
  cache.append(a, 6);
  const int64_t b = cache.fork(a), c = cache.fork(a);
  EXPECT_EQ(cache.pages_to_append({{b, 1}, {c, 2}}), 2);  // a keeps the partial page: 2 copies
  cache.release(a);
  EXPECT_EQ(cache.pages_to_append({{b, 1}, {c, 2}}), 1);  // the last of b, c keeps it
  EXPECT_EQ(cache.pages_to_append(b, 1) + cache.pages_to_append(c, 2), 2);  // one too many
  EXPECT_EQ(cache.pages_to_append({{b, 3}, {c, 2}}), 2);  // + a new page for b's 9th token
  const int64_t before = cache.free_pages();
  cache.append(b, 3);
  cache.append(c, 2);
  EXPECT_EQ(before - cache.free_pages(), 2);
}

TEST(PagedKvCache, SlotsAndBlockTables) {
  PagedKvCache cache(tiny_config(), 6, 4, torch::kFloat, torch::kCPU);
  const int64_t a = cache.create(), b = cache.create();
  cache.append(a, 2);
  cache.append(b, 5);
  cache.append(a, 4);
  const auto& pa = cache.page_table(a);
  EXPECT_EQ(cache.slot(a, 5), pa[1] * 4 + 1);
  EXPECT_THROW(cache.slot(a, 6), Error);
  auto tables = cache.block_tables({a, b});
  ASSERT_EQ(tables.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(tables[0][1].item<int>(), pa[1]);
  EXPECT_EQ(tables[1][0].item<int>(), cache.page_table(b)[0]);
  auto lengths = cache.lengths({a, b});
  EXPECT_EQ(lengths[0].item<int>(), 6);
  EXPECT_EQ(lengths[1].item<int>(), 5);
}

// --- The paged forward equals the full forward (no cache) at every row's last token.

torch::Tensor last_logits(const Phi3Model& model, const std::vector<int64_t>& ids) {
  return testing::full_logits(model, ids)[static_cast<int64_t>(ids.size()) - 1];
}

// fp32 tolerance 1e-5, relative to the logits' scale (|logit| up to ~6 here). The packed [N, C]
// matmuls of a batch round differently from the full forward's [T, C] ones: up to ~2e-5 absolute
// on these logits (~4e-6 relative); the dense KvCache decode of Phi3Model itself differs from the
// full forward by ~5e-6. A one-row paged decode equals the dense-cache decode bit for bit.
double tolerance(const torch::Tensor& expected) {
  return 1e-5 * std::max(1.0, expected.abs().max().item<double>());
}

std::vector<TokenId> to_ids(const std::vector<int64_t>& v) {
  return {v.begin(), v.end()};
}

class PagedForwardTest : public ::testing::TestWithParam<std::string> {};

TEST_P(PagedForwardTest, MatchesFullForwardForPrefillDecodeAndForks) {
  torch::NoGradGuard no_grad;
  const Phi3Model model =
      Phi3Model::load(testing::golden_model_dir(GetParam()), torch::kFloat, torch::kCPU);
  const int64_t V = model.config().vocab_size;
  PagedKvCache cache(model.config(), 64, 4, torch::kFloat, torch::kCPU);
  // Three rows of different lengths (up to 30 tokens: past mini's sliding window of 20, short of
  // its longrope switch at 32).
  std::vector<std::vector<int64_t>> seqs = {random_tokens(7, V, 1), random_tokens(1, V, 2),
                                            random_tokens(13, V, 3)};
  std::vector<int64_t> ids = {cache.create(), cache.create(), cache.create()};
  auto check = [&](const std::vector<PagedRow>& rows, const std::vector<size_t>& which,
                   const char* what) {
    auto logits = paged_forward(model, cache, rows);
    ASSERT_EQ(logits.size(0), static_cast<int64_t>(which.size()));
    for (size_t i = 0; i < which.size(); ++i) {
      const auto expected = last_logits(model, seqs[which[i]]);
      EXPECT_LT(max_abs_diff(logits[static_cast<int64_t>(i)], expected), tolerance(expected))
          << what << " row " << i;
    }
  };
  check({{ids[0], to_ids(seqs[0]), true},
         {ids[1], to_ids(seqs[1]), true},
         {ids[2], to_ids(seqs[2]), true}},
        {0, 1, 2}, "prefill");
  // Mixed: two decode rows and a 5-token chunk in one call; then decode for a while.
  for (int step = 0; step < 17; ++step) {
    std::vector<PagedRow> rows;
    for (size_t r = 0; r < 3; ++r) {
      const int64_t n = (step == 0 && r == 1) ? 5 : 1;
      auto next = random_tokens(n, V, 100 + static_cast<uint64_t>(step * 3) + r);
      seqs[r].insert(seqs[r].end(), next.begin(), next.end());
      rows.push_back({ids[r], to_ids(next), true});
    }
    check(rows, {0, 1, 2}, "decode");
  }
  // A fork and its parent diverge (copy-on-write); rows without logits are skipped.
  const int64_t child = cache.fork(ids[0]);
  seqs.push_back(seqs[0]);
  ids.push_back(child);
  const auto a = random_tokens(2, V, 900), b = random_tokens(3, V, 901);
  seqs[0].insert(seqs[0].end(), a.begin(), a.end());
  seqs[3].insert(seqs[3].end(), b.begin(), b.end());
  check({{ids[0], to_ids(a), true}, {ids[3], to_ids(b), true}, {ids[1], {5}, false}}, {0, 3},
        "fork");
  seqs[1].push_back(5);
  seqs[1].push_back(6);
  check({{ids[1], {6}, true}}, {1}, "after a row without logits");
}

INSTANTIATE_TEST_SUITE_P(Golden, PagedForwardTest, ::testing::Values("phi4_tiny", "mini_tiny"));

// One row at a time: within 1e-5 absolute of the full forward.
TEST(PagedForward, OneRowMatchesFullForward) {
  torch::NoGradGuard no_grad;
  const Phi3Model model =
      Phi3Model::load(testing::golden_model_dir("phi4_tiny"), torch::kFloat, torch::kCPU);
  const int64_t V = model.config().vocab_size;
  auto ids = random_tokens(13, V, 3);
  PagedKvCache paged(model.config(), 16, 4, torch::kFloat, torch::kCPU);
  const int64_t seq = paged.create();
  std::vector<int64_t> next = ids;
  for (int step = 0; step < 12; ++step) {
    const auto from_paged = paged_forward(model, paged, {{seq, to_ids(next), true}})[0];
    EXPECT_LT(max_abs_diff(from_paged, last_logits(model, ids)), 1e-5) << "step " << step;
    next = random_tokens(1, V, 100 + static_cast<uint64_t>(step));
    ids.push_back(next[0]);
  }
}

TEST(PagedForward, RejectsBadRows) {
  torch::NoGradGuard no_grad;
  const Phi3Model model =
      Phi3Model::load(testing::golden_model_dir("mini_tiny"), torch::kFloat, torch::kCPU);
  PagedKvCache cache(model.config(), 16, 4, torch::kFloat, torch::kCPU);
  const int64_t a = cache.create();
  EXPECT_THROW(paged_forward(model, cache, {{a, {}, true}}), InputError);
  EXPECT_THROW(paged_forward(model, cache, {{a, {1}, true}, {a, {2}, true}}), InputError);
  EXPECT_THROW(paged_forward(model, cache, {{a, {static_cast<TokenId>(1 << 20)}, true}}),
               InputError);
  // Longrope: 33 tokens need the long factors.
  EXPECT_THROW(paged_forward(model, cache, {{a, to_ids(random_tokens(33, 100, 1)), true}}),
               InputError);
  EXPECT_EQ(cache.length(a), 0);
}

}  // namespace
}  // namespace align
