// dense_attention (scaled_dot_product_attention, one causal call per packed document) against the
// reference attention(): forward and gradients, whole rows and packed rows, right padding, grouped
// KV heads, the sliding-window and recurring-segment fallbacks; fp32 and bf16.
#include <gtest/gtest.h>

#include <vector>

#include "model/attention.h"

namespace align {
namespace {

constexpr int64_t kHeads = 6, kKvHeads = 2, kHeadDim = 16;

struct Qkv {
  torch::Tensor qkv;      // [B, T, (H + 2 Hkv) D] leaf, the fused projection's output
  torch::Tensor q, k, v;  // strided views: q [B, T, H, D], k and v [B, T, Hkv, D]
};

Qkv make_qkv(int64_t B, int64_t T, torch::ScalarType dtype, uint64_t seed) {
  torch::manual_seed(seed);
  Qkv x;
  const int64_t HD = kHeads * kHeadDim, KD = kKvHeads * kHeadDim;
  x.qkv = torch::randn({B, T, HD + 2 * KD}).to(dtype).requires_grad_(true);
  x.q = x.qkv.narrow(-1, 0, HD).view({B, T, kHeads, kHeadDim});
  x.k = x.qkv.narrow(-1, HD, KD).view({B, T, kKvHeads, kHeadDim});
  x.v = x.qkv.narrow(-1, HD + KD, KD).view({B, T, kKvHeads, kHeadDim});
  return x;
}

torch::Tensor segment_rows(const std::vector<std::vector<int64_t>>& rows) {
  std::vector<torch::Tensor> out;
  for (const auto& r : rows)
    out.push_back(torch::tensor(r, torch::kLong));
  return torch::stack(out);
}

// Output and d(sum(out * w))/d(qkv) of both implementations, each in `dtype`, and the reference
// in fp32 (the yardstick for bf16).
struct Results {
  torch::Tensor out, grad;
};

Results run(bool dense, int64_t B, int64_t T, torch::ScalarType dtype, int64_t window,
            const torch::Tensor& segments) {
  Qkv x = make_qkv(B, T, dtype, 7);
  const double scale = 0.25;
  torch::Tensor out;
  if (dense) {
    const auto plan = plan_dense_attention(B, T, window, segments, dtype, torch::kCPU);
    out = dense_attention(x.q, x.k, x.v, plan, scale);
  } else {
    const auto slots = torch::arange(T, torch::kLong).expand({B, T});
    const auto allowed = attention_mask(slots, T, window, segments);
    out = attention(x.q, x.k.transpose(1, 2), x.v.transpose(1, 2), allowed, scale);
  }
  torch::manual_seed(99);
  const auto w = torch::randn(out.sizes());
  (out.to(torch::kFloat) * w).sum().backward();
  return {out.detach().to(torch::kFloat), x.qkv.grad().to(torch::kFloat)};
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// fp32: the two differ only in summation order. bf16: dense's error against the fp32 reference
// is at most twice the reference's own bf16 error (FlashAttention's criterion), plus a little.
void expect_match(int64_t B, int64_t T, int64_t window, const torch::Tensor& segments) {
  const Results ref = run(false, B, T, torch::kFloat, window, segments);
  const Results got = run(true, B, T, torch::kFloat, window, segments);
  EXPECT_LT(max_diff(got.out, ref.out), 1e-5);
  EXPECT_LT(max_diff(got.grad, ref.grad), 1e-4);

  const Results ref16 = run(false, B, T, torch::kBFloat16, window, segments);
  const Results got16 = run(true, B, T, torch::kBFloat16, window, segments);
  EXPECT_LE(max_diff(got16.out, ref.out), 2 * max_diff(ref16.out, ref.out) + 1e-3);
  EXPECT_LE(max_diff(got16.grad, ref.grad), 2 * max_diff(ref16.grad, ref.grad) + 1e-2);
}

TEST(DenseAttention, WholeRowsMatchTheReference) {
  const auto plan = plan_dense_attention(2, 37, 0, torch::Tensor(), torch::kFloat, torch::kCPU);
  EXPECT_TRUE(plan.spans.empty());
  EXPECT_FALSE(plan.bias.defined());
  expect_match(2, 37, 0, torch::Tensor());
  expect_match(1, 1, 0, torch::Tensor());
}

TEST(DenseAttention, OneSegmentPerRowIsAWholeRow) {
  const auto seg = segment_rows({{3, 3, 3, 3, 3}, {8, 8, 8, 8, 8}});
  const auto plan = plan_dense_attention(2, 5, 0, seg, torch::kFloat, torch::kCPU);
  EXPECT_TRUE(plan.spans.empty());
  EXPECT_FALSE(plan.bias.defined());
  expect_match(2, 5, 0, seg);
}

TEST(DenseAttention, PackedRowsRunOneCallPerDocument) {
  // Rows of different layouts: one-token documents, a row of one document, and right padding
  // given its own segment id (row 2) or the last document's (row 1), as a batcher may do.
  const auto seg = segment_rows({{0, 0, 0, 1, 2, 2, 2, 2, 2, 3, 3, 3},
                                 {5, 5, 5, 5, 5, 5, 6, 6, 6, 6, 6, 6},
                                 {1, 2, 2, 2, 2, 2, 2, 2, 2, 9, 9, 9},
                                 {4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}});
  const auto plan = plan_dense_attention(4, 12, 0, seg, torch::kFloat, torch::kCPU);
  EXPECT_FALSE(plan.bias.defined());
  std::vector<std::vector<int64_t>> spans;
  for (const auto& s : plan.spans)
    spans.push_back({s.row, s.start, s.length});
  const std::vector<std::vector<int64_t>> want = {{0, 0, 3}, {0, 3, 1}, {0, 4, 5}, {0, 9, 3},
                                                  {1, 0, 6}, {1, 6, 6}, {2, 0, 1}, {2, 1, 8},
                                                  {2, 9, 3}, {3, 0, 12}};
  EXPECT_EQ(spans, want);
  expect_match(4, 12, 0, seg);
}

TEST(DenseAttention, SpansOfOneLayoutRunAsViewsAcrossRows) {
  // Same layout in every row: one call per document position, reading views, no reordering.
  const auto same = segment_rows({{0, 0, 0, 1, 1, 1, 1, 2}, {3, 3, 3, 4, 4, 4, 4, 5}});
  const auto plan = plan_dense_attention(2, 8, 0, same, torch::kFloat, torch::kCPU);
  ASSERT_EQ(plan.groups.size(), 3u);
  for (const auto& g : plan.groups)
    EXPECT_GE(g.start, 0);
  EXPECT_FALSE(plan.order.defined());
  expect_match(2, 8, 0, same);
  // Partly shared: the first documents are views, the rest gathered by length and put back.
  const auto mixed = segment_rows({{0, 0, 0, 1, 1, 1, 1, 2, 2}, {5, 5, 5, 6, 6, 6, 6, 6, 6}});
  const auto plan2 = plan_dense_attention(2, 9, 0, mixed, torch::kFloat, torch::kCPU);
  ASSERT_EQ(plan2.groups.size(), 4u);  // (0, 3) view; lengths 2, 4, 6 gathered
  EXPECT_EQ(plan2.groups[0].start, 0);
  EXPECT_TRUE(plan2.order.defined());
  expect_match(2, 9, 0, mixed);
}

TEST(DenseAttention, LongerPackedRowsWithGroupedHeads) {
  // Documents longer than the CPU flash kernel's blocks (it splits queries and keys at 32-512).
  std::vector<int64_t> row;
  int64_t doc = 0;
  for (int64_t len : {300, 1, 77, 700})
    row.insert(row.end(), static_cast<size_t>(len), doc++);
  expect_match(1, static_cast<int64_t>(row.size()), 0, segment_rows({row}));
}

TEST(DenseAttention, BindingSlidingWindowFallsBackToABias) {
  const auto seg = segment_rows({{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1}});
  const auto plan = plan_dense_attention(1, 12, 4, seg, torch::kFloat, torch::kCPU);
  ASSERT_TRUE(plan.bias.defined());
  EXPECT_EQ(plan.bias.sizes(), (std::vector<int64_t>{1, 1, 12, 12}));
  expect_match(1, 12, 4, seg);
  expect_match(2, 30, 7, torch::Tensor());
  // A window no sequence reaches changes nothing: causal calls.
  const auto loose = plan_dense_attention(1, 12, 9, seg, torch::kFloat, torch::kCPU);
  EXPECT_FALSE(loose.bias.defined());
  EXPECT_EQ(loose.spans.size(), 2u);
  expect_match(1, 12, 9, seg);
}

TEST(DenseAttention, RecurringSegmentIdFallsBackToABias) {
  // attention_mask() lets the two runs of id 0 see each other; so must dense_attention.
  const auto seg = segment_rows({{0, 0, 0, 1, 1, 0, 0, 0}, {2, 2, 2, 2, 3, 3, 3, 3}});
  const auto plan = plan_dense_attention(2, 8, 0, seg, torch::kFloat, torch::kCPU);
  EXPECT_TRUE(plan.bias.defined());
  EXPECT_TRUE(plan.spans.empty());
  expect_match(2, 8, 0, seg);
}

}  // namespace
}  // namespace align
