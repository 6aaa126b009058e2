// Paged decode attention: the LibTorch references against model/attention.cc's dense attention
// (CPU), the shared-prefix reference against the plain one (CPU), and the kernels against the
// references: the CPU twins here, the CUDA kernels on a GPU (skipped with a message when no GPU is
// present).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/kernel_support.h"
#include "kernels/paged_attention_op.h"
#include "model/attention.h"
#include "tests/gpu_test_util.h"

namespace align {
namespace {

#define REQUIRE_GPU() REQUIRE_GPU_WITH(cuda_kernels_built())

int64_t pages_for(int64_t len, int64_t page_size) {
  return (len + page_size - 1) / page_size;
}

// A KV cache holding random dense sequences at shuffled, non-contiguous page ids; unused slots
// and pages hold noise so that reading past a sequence changes the answer.
struct PagedKv {
  torch::Tensor k_cache, v_cache;   // [num_pages, page_size, Hkv, D]
  std::vector<torch::Tensor> k, v;  // per sequence [L, Hkv, D]
  std::vector<std::vector<int32_t>> pages;
  int64_t page_size = 0;
};

PagedKv make_paged_kv(const std::vector<int64_t>& lens, int64_t page_size, int64_t Hkv, int64_t D,
                      torch::ScalarType dtype) {
  PagedKv kv;
  kv.page_size = page_size;
  int64_t total = 5;  // spare pages nobody owns
  for (int64_t len : lens)
    total += pages_for(len, page_size);
  auto opts = torch::TensorOptions().dtype(dtype);
  kv.k_cache = torch::randn({total, page_size, Hkv, D}, opts) * 7;
  kv.v_cache = torch::randn({total, page_size, Hkv, D}, opts) * 7;
  torch::Tensor perm = torch::randperm(total, torch::kLong);
  int64_t next = 0;
  for (int64_t len : lens) {
    kv.k.push_back(torch::randn({len, Hkv, D}, opts));
    kv.v.push_back(torch::randn({len, Hkv, D}, opts));
    std::vector<int32_t> ids;
    for (int64_t p = 0; p < pages_for(len, page_size); ++p) {
      const int64_t id = perm[next++].item<int64_t>();
      const int64_t n = std::min(page_size, len - p * page_size);
      kv.k_cache[id].narrow(0, 0, n).copy_(kv.k.back().narrow(0, p * page_size, n));
      kv.v_cache[id].narrow(0, 0, n).copy_(kv.v.back().narrow(0, p * page_size, n));
      ids.push_back(static_cast<int32_t>(id));
    }
    kv.pages.push_back(ids);
  }
  return kv;
}

// [N, width] int32, rows padded with page 0 (a real page: reading it would be a visible error).
torch::Tensor table(const std::vector<std::vector<int32_t>>& rows, int64_t extra_width = 2) {
  size_t width = 0;
  for (const auto& r : rows)
    width = std::max(width, r.size());
  torch::Tensor t =
      torch::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(width) + extra_width},
                   torch::kInt32);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (size_t j = 0; j < rows[i].size(); ++j)
      t[i][j] = rows[i][j];
  }
  return t;
}

torch::Tensor ints(const std::vector<int64_t>& v) {
  return torch::tensor(v, torch::kLong).to(torch::kInt32);
}

int64_t max_of(const std::vector<int64_t>& v) {
  return *std::max_element(v.begin(), v.end());
}

// model/attention.cc on one row: q [H, D]; k, v [L, Hkv, D] -> [H, D].
torch::Tensor dense_row(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                        int64_t window, double scale) {
  const int64_t L = k.size(0);
  auto slots = torch::full({1, 1}, L - 1, torch::kLong);
  auto allowed = attention_mask(slots, L, window, torch::Tensor());
  auto out = attention(q.view({1, 1, q.size(0), q.size(1)}), k.permute({1, 0, 2}).unsqueeze(0),
                       v.permute({1, 0, 2}).unsqueeze(0), allowed, scale);
  return out.view({q.size(0), q.size(1)});
}

double rel_err(const torch::Tensor& got, const torch::Tensor& want) {
  auto g = got.to(torch::kCPU, torch::kFloat32), w = want.to(torch::kCPU, torch::kFloat32);
  return (g - w).abs().max().item<double>() / (w.abs().max().item<double>() + 1e-6);
}

double tol_for(torch::ScalarType dtype) {
  return dtype == torch::kFloat32 ? 1e-5 : 2e-2;
}

// Lengths around the page boundaries, cycled over B rows.
std::vector<int64_t> lens_for(int64_t B, int64_t page_size) {
  const std::vector<int64_t> pool = {1,
                                     page_size - 1 > 0 ? page_size - 1 : 1,
                                     page_size,
                                     page_size + 1,
                                     7 * page_size + 3,
                                     2 * page_size,
                                     37};
  std::vector<int64_t> lens;
  for (int64_t b = 0; b < B; ++b)
    lens.push_back(pool[(b * 5 + B) % pool.size()]);
  return lens;
}

TEST(PagedAttentionReference, MatchesDenseAttention) {
  torch::manual_seed(0);
  const int64_t D = 32;
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t page_size : {1, 16}) {
      for (auto [H, Hkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {8, 2}, {12, 2}}) {
        for (int64_t B : {1, 3, 19}) {
          for (int64_t window : {0, 1, 5, 37}) {
            const auto lens = lens_for(B, page_size);
            PagedKv kv = make_paged_kv(lens, page_size, Hkv, D, dtype);
            auto q = torch::randn({B, H, D}, torch::TensorOptions().dtype(dtype));
            const double scale = 1.0 / std::sqrt(static_cast<double>(D));
            torch::Tensor got = paged_decode_attention(q, kv.k_cache, kv.v_cache, table(kv.pages),
                                                       ints(lens), max_of(lens), scale, window);
            ASSERT_EQ(got.sizes(), q.sizes());
            ASSERT_EQ(got.scalar_type(), dtype);
            for (int64_t b = 0; b < B; ++b) {
              torch::Tensor want = dense_row(q[b], kv.k[b], kv.v[b], window, scale);
              EXPECT_LE(rel_err(got[b], want), tol_for(dtype))
                  << c10::toString(dtype) << " page_size " << page_size << " H " << H << " Hkv "
                  << Hkv << " B " << B << " row " << b << " len " << lens[b] << " window "
                  << window;
            }
          }
        }
      }
    }
  }
}

TEST(PagedAttentionReference, ManyPagesAndLongContext) {
  torch::manual_seed(1);
  const std::vector<int64_t> lens = {1000, 1, 257};
  PagedKv kv = make_paged_kv(lens, 16, 2, 64, torch::kFloat32);
  auto q = torch::randn({3, 8, 64});
  torch::Tensor got = paged_decode_attention(q, kv.k_cache, kv.v_cache, table(kv.pages), ints(lens),
                                             1000, 0.125, 0);
  for (int64_t b = 0; b < 3; ++b) {
    EXPECT_LE(rel_err(got[b], dense_row(q[b], kv.k[b], kv.v[b], 0, 0.125)), 1e-5) << b;
  }
}

TEST(PagedAttentionReference, RejectsBadInputs) {
  PagedKv kv = make_paged_kv({5}, 4, 2, 8, torch::kFloat32);
  auto q = torch::randn({1, 4, 8});
  auto bt = table(kv.pages, 0);  // [1, 2]: room for 8 tokens
  const double s = 0.5;
  EXPECT_NO_THROW(paged_decode_attention(q, kv.k_cache, kv.v_cache, bt, ints({8}), 8, s));
  EXPECT_ANY_THROW(paged_decode_attention(q, kv.k_cache, kv.v_cache, bt, ints({9}), 9, s));
  EXPECT_ANY_THROW(paged_decode_attention(q, kv.k_cache, kv.v_cache, bt, ints({0}), 1, s));
  EXPECT_ANY_THROW(
      paged_decode_attention(q, kv.k_cache, kv.v_cache, bt.to(torch::kLong), ints({5}), 5, s));
  EXPECT_ANY_THROW(
      paged_decode_attention(torch::randn({1, 3, 8}), kv.k_cache, kv.v_cache, bt, ints({5}), 5, s));
  EXPECT_ANY_THROW(
      paged_decode_attention(q.to(torch::kBFloat16), kv.k_cache, kv.v_cache, bt, ints({5}), 5, s));
  // max_context_len below a length, or outside [1, capacity].
  EXPECT_ANY_THROW(paged_decode_attention(q, kv.k_cache, kv.v_cache, bt, ints({5}), 4, s));
  EXPECT_ANY_THROW(paged_decode_attention(q, kv.k_cache, kv.v_cache, bt, ints({5}), 0, s));
  EXPECT_ANY_THROW(paged_decode_attention(q, kv.k_cache, kv.v_cache, bt, ints({5}), 9, s));
}

// G groups; group g has a prefix of prefix_lens[g] tokens; row b belongs to group_of_row[b] and
// has suffix_lens[b] tokens of its own.
struct SharedPrefixCase {
  PagedKv kv;  // sequences: the G prefixes, then the B suffixes
  SharedPrefixBatch batch;
  std::vector<int64_t> group_of_row, prefix_lens, suffix_lens;
};

SharedPrefixCase make_shared_prefix(const std::vector<int64_t>& group_of_row,
                                    const std::vector<int64_t>& prefix_lens,
                                    const std::vector<int64_t>& suffix_lens, int64_t page_size,
                                    int64_t Hkv, int64_t D, torch::ScalarType dtype) {
  SharedPrefixCase c;
  c.group_of_row = group_of_row;
  c.prefix_lens = prefix_lens;
  c.suffix_lens = suffix_lens;
  std::vector<int64_t> lens = prefix_lens;
  lens.insert(lens.end(), suffix_lens.begin(), suffix_lens.end());
  c.kv = make_paged_kv(lens, page_size, Hkv, D, dtype);
  const size_t G = prefix_lens.size();
  std::vector<std::vector<int32_t>> prefix_pages(c.kv.pages.begin(), c.kv.pages.begin() + G);
  std::vector<std::vector<int32_t>> suffix_pages(c.kv.pages.begin() + G, c.kv.pages.end());
  c.batch.group_of_row = ints(group_of_row);
  c.batch.group_prefix_pages = table(prefix_pages, 1);
  c.batch.group_prefix_lens = ints(prefix_lens);
  c.batch.suffix_block_tables = table(suffix_pages, 1);
  c.batch.suffix_lens = ints(suffix_lens);
  return c;
}

SharedPrefixCase standard_case(int64_t page_size, int64_t Hkv, int64_t D, torch::ScalarType dtype,
                               bool page_aligned) {
  // 4 groups (one with no rows, one with an empty prefix), 11 rows; suffixes 0 .. 2 pages.
  const int64_t ps = page_size;
  std::vector<int64_t> prefix = {3 * ps, 0, ps, 2 * ps};
  if (!page_aligned) prefix = {3 * ps + 5, 0, ps - 1 > 0 ? ps - 1 : 1, 2 * ps + 1};
  const std::vector<int64_t> group_of_row = {0, 2, 0, 1, 0, 3, 3, 0, 2, 0, 0};
  std::vector<int64_t> suffix = {1, 0, ps, 2, ps + 1, 2 * ps, 1, 7, 3, ps - 1 > 0 ? ps - 1 : 1, 1};
  return make_shared_prefix(group_of_row, prefix, suffix, page_size, Hkv, D, dtype);
}

TEST(PagedAttentionSharedPrefix, ReferenceEqualsPlainReference) {
  torch::manual_seed(2);
  const int64_t D = 32;
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t page_size : {1, 8}) {
      for (auto [H, Hkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {8, 2}, {12, 2}}) {
        for (int64_t window : {0, 3, 20}) {
          SharedPrefixCase c = standard_case(page_size, Hkv, D, dtype, /*page_aligned=*/true);
          const int64_t B = static_cast<int64_t>(c.group_of_row.size());
          const int64_t G = static_cast<int64_t>(c.prefix_lens.size());
          // The plain batch: prefix pages ++ suffix pages.
          std::vector<std::vector<int32_t>> rows;
          std::vector<int64_t> lens;
          for (int64_t b = 0; b < B; ++b) {
            const int64_t g = c.group_of_row[b];
            std::vector<int32_t> r = c.kv.pages[g];
            r.insert(r.end(), c.kv.pages[G + b].begin(), c.kv.pages[G + b].end());
            rows.push_back(r);
            lens.push_back(c.prefix_lens[g] + c.suffix_lens[b]);
          }
          auto q = torch::randn({B, H, D}, torch::TensorOptions().dtype(dtype));
          const double scale = 1.0 / std::sqrt(static_cast<double>(D));
          torch::Tensor got = paged_decode_attention_shared_prefix_reference(
              q, c.kv.k_cache, c.kv.v_cache, c.batch, scale, window);
          torch::Tensor want = paged_decode_attention_reference(
              q, c.kv.k_cache, c.kv.v_cache, table(rows), ints(lens), scale, window);
          EXPECT_LE(rel_err(got, want), tol_for(dtype))
              << c10::toString(dtype) << " page_size " << page_size << " H " << H << " Hkv " << Hkv
              << " window " << window;
          // With gradients wanted the dispatching entry point takes this reference.
          auto q_grad = q.clone().requires_grad_(true);
          torch::Tensor dispatched = paged_decode_attention_shared_prefix(
              q_grad, c.kv.k_cache, c.kv.v_cache, c.batch, scale, window);
          EXPECT_TRUE(torch::equal(dispatched.detach(), got));
        }
      }
    }
  }
}

TEST(PagedAttentionSharedPrefix, UnalignedPrefixMatchesDenseAttention) {
  torch::manual_seed(3);
  const int64_t D = 32, H = 8, Hkv = 2, ps = 8;
  for (int64_t window : {0, 6}) {
    SharedPrefixCase c = standard_case(ps, Hkv, D, torch::kFloat32, /*page_aligned=*/false);
    const int64_t B = static_cast<int64_t>(c.group_of_row.size());
    const int64_t G = static_cast<int64_t>(c.prefix_lens.size());
    auto q = torch::randn({B, H, D});
    torch::Tensor got = paged_decode_attention_shared_prefix_reference(
        q, c.kv.k_cache, c.kv.v_cache, c.batch, 0.2, window);
    for (int64_t b = 0; b < B; ++b) {
      const int64_t g = c.group_of_row[b];
      auto k = torch::cat({c.kv.k[g], c.kv.k[G + b]});
      auto v = torch::cat({c.kv.v[g], c.kv.v[G + b]});
      EXPECT_LE(rel_err(got[b], dense_row(q[b], k, v, window, 0.2)), 1e-5)
          << "row " << b << " window " << window;
    }
  }
}

TEST(PagedAttentionSharedPrefix, RejectsBadInputs) {
  SharedPrefixCase c = standard_case(4, 2, 8, torch::kFloat32, true);
  auto q = torch::randn({11, 4, 8});
  SharedPrefixBatch bad = c.batch;
  bad.group_of_row = ints({0, 2, 0, 1, 0, 3, 3, 0, 2, 0, 4});  // group 4 of 4
  EXPECT_ANY_THROW(paged_decode_attention_shared_prefix(q, c.kv.k_cache, c.kv.v_cache, bad, 1.0));
  bad = c.batch;
  bad.suffix_lens = ints({1, 0, 4, 2, 5, 8, 1, 7, 3, 3, 0});  // row 1 (group 2) still has a prefix
  EXPECT_NO_THROW(paged_decode_attention_shared_prefix(q, c.kv.k_cache, c.kv.v_cache, bad, 1.0));
  bad.suffix_lens = ints({1, 0, 4, 0, 5, 8, 1, 7, 3, 3, 0});  // row 3: empty prefix and suffix
  EXPECT_ANY_THROW(paged_decode_attention_shared_prefix(q, c.kv.k_cache, c.kv.v_cache, bad, 1.0));
  // The plan the engine builds from host lengths checks them as the op does.
  EXPECT_THROW(shared_prefix_plan({0, 2}, {4, 4}, {1, 1}, torch::kCPU), Error);  // group 2 of 2
  EXPECT_THROW(shared_prefix_plan({0}, {0}, {0}, torch::kCPU), Error);           // no key
  EXPECT_THROW(shared_prefix_plan({0}, {-1}, {3}, torch::kCPU), Error);
  EXPECT_THROW(shared_prefix_plan({0, 0}, {4}, {1}, torch::kCPU), Error);  // lengths for 1 row
}

// ---- The kernels against the references: CUDA (GPU) and their CPU twins ----------------------

// Moves `t` to `device`.
torch::Tensor on(const torch::Tensor& t, const torch::Device& device) {
  return t.to(device);
}

void check_matches_reference_over_shapes(const torch::Device& device) {
  torch::manual_seed(4);
  const std::vector<int64_t> dims =
      device.is_cuda() ? std::vector<int64_t>{64, 96, 128} : std::vector<int64_t>{16, 64, 80, 128};
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t D : dims) {
      for (auto [H, Hkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {8, 2}, {12, 2}}) {
        for (int64_t B : {1, 3, 19}) {
          for (int64_t window : {0, 5}) {
            auto lens = lens_for(B, 16);
            if (B == 3) lens[1] = 2000;  // many splits
            PagedKv kv = make_paged_kv(lens, 16, Hkv, D, dtype);
            auto q = torch::randn({B, H, D}, torch::TensorOptions().dtype(dtype));
            const double scale = 1.0 / std::sqrt(static_cast<double>(D));
            // fp32 reference on the same (possibly bf16) data.
            torch::Tensor want = paged_decode_attention_reference(
                q.to(torch::kFloat32), kv.k_cache.to(torch::kFloat32),
                kv.v_cache.to(torch::kFloat32), table(kv.pages), ints(lens), scale, window);
            torch::Tensor got = paged_decode_attention(
                on(q, device), on(kv.k_cache, device), on(kv.v_cache, device),
                on(table(kv.pages), device), on(ints(lens), device), max_of(lens), scale, window);
            ASSERT_EQ(got.scalar_type(), dtype);
            // bf16: one rounding of the output (2^-8) plus the inputs' accumulated error.
            EXPECT_LE(rel_err(got, want), dtype == torch::kFloat32 ? 1e-5 : 1e-2)
                << c10::toString(dtype) << " D " << D << " H " << H << " Hkv " << Hkv << " B " << B
                << " window " << window;
          }
        }
      }
    }
  }
}

void check_strided_query_and_page_size_one(const torch::Device& device) {
  torch::manual_seed(5);
  const std::vector<int64_t> lens = {1, 2, 33};
  PagedKv kv = make_paged_kv(lens, 1, 2, 64, torch::kFloat32);
  auto wide = torch::randn({3, 8, 80});
  auto q = wide.narrow(2, 7, 64);  // D contiguous, heads 80 apart
  torch::Tensor want = paged_decode_attention_reference(q, kv.k_cache, kv.v_cache, table(kv.pages),
                                                        ints(lens), 0.125, 0);
  torch::Tensor got =
      paged_decode_attention(on(q, device), on(kv.k_cache, device), on(kv.v_cache, device),
                             on(table(kv.pages), device), on(ints(lens), device), 33, 0.125, 0);
  EXPECT_LE(rel_err(got, want), 1e-5);
}

void check_shared_prefix_matches_reference(const torch::Device& device) {
  torch::manual_seed(6);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t D : {64, 128}) {
      for (auto [H, Hkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {40, 10}, {12, 2}}) {
        for (bool aligned : {true, false}) {
          for (int64_t window : {0, 9}) {
            SharedPrefixCase c = standard_case(16, Hkv, D, dtype, aligned);
            const int64_t B = static_cast<int64_t>(c.group_of_row.size());
            auto q = torch::randn({B, H, D}, torch::TensorOptions().dtype(dtype));
            const double scale = 1.0 / std::sqrt(static_cast<double>(D));
            torch::Tensor want = paged_decode_attention_shared_prefix_reference(
                q.to(torch::kFloat32), c.kv.k_cache.to(torch::kFloat32),
                c.kv.v_cache.to(torch::kFloat32), c.batch, scale, window);
            SharedPrefixBatch moved;
            moved.group_of_row = on(c.batch.group_of_row, device);
            moved.group_prefix_pages = on(c.batch.group_prefix_pages, device);
            moved.group_prefix_lens = on(c.batch.group_prefix_lens, device);
            moved.suffix_block_tables = on(c.batch.suffix_block_tables, device);
            moved.suffix_lens = on(c.batch.suffix_lens, device);
            torch::Tensor got = paged_decode_attention_shared_prefix(
                on(q, device), on(c.kv.k_cache, device), on(c.kv.v_cache, device), moved, scale,
                window);
            // With the plan the engine's planner builds from its host lengths: the same result,
            // without reading the lengths back.
            SharedPrefixBatch planned = moved;
            planned.plan = shared_prefix_plan(c.group_of_row, c.prefix_lens, c.suffix_lens, device);
            EXPECT_TRUE(torch::equal(paged_decode_attention_shared_prefix(
                                         on(q, device), on(c.kv.k_cache, device),
                                         on(c.kv.v_cache, device), planned, scale, window),
                                     got))
                << "planned";
            EXPECT_LE(rel_err(got, want), dtype == torch::kFloat32 ? 1e-5 : 1e-2)
                << c10::toString(dtype) << " D " << D << " H " << H << " aligned " << aligned
                << " window " << window;
          }
        }
      }
    }
  }
}

TEST(PagedAttentionKernel, MatchesReferenceOverShapesAndDtypes) {
  REQUIRE_GPU();
  check_matches_reference_over_shapes(torch::kCUDA);
}

TEST(PagedAttentionKernel, StridedQueryAndPageSizeOne) {
  REQUIRE_GPU();
  check_strided_query_and_page_size_one(torch::kCUDA);
}

TEST(PagedAttentionKernel, SharedPrefixMatchesReference) {
  REQUIRE_GPU();
  check_shared_prefix_matches_reference(torch::kCUDA);
}

// The CPU twins (paged_attention_cpu.h) serve CPU tensors without gradients.
TEST(PagedAttentionCpuKernel, MatchesReferenceOverShapesAndDtypes) {
  check_matches_reference_over_shapes(torch::kCPU);
}

TEST(PagedAttentionCpuKernel, StridedQueryAndPageSizeOne) {
  check_strided_query_and_page_size_one(torch::kCPU);
}

TEST(PagedAttentionCpuKernel, SharedPrefixMatchesReference) {
  check_shared_prefix_matches_reference(torch::kCPU);
}

// Prefill chunks: the CPU kernel (this is a CPU test: no gradients) and the reference against
// model/attention.cc's causal attention over each row's dense keys.
TEST(PagedPrefillAttention, KernelAndReferenceMatchDenseCausalAttention) {
  torch::manual_seed(7);
  const std::vector<int64_t> starts = {0, 0, 15, 300, 5, 16};
  const std::vector<int64_t> counts = {1, 37, 20, 70, 1, 16};
  std::vector<int64_t> lens;
  for (size_t r = 0; r < starts.size(); ++r)
    lens.push_back(starts[r] + counts[r]);
  const int64_t N = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (int64_t D : {16, 64, 80}) {
      for (auto [H, Hkv] : std::vector<std::pair<int64_t, int64_t>>{{4, 4}, {12, 4}}) {
        for (int64_t window : {0, 7}) {
          PagedKv kv = make_paged_kv(lens, 16, Hkv, D, dtype);
          auto q = torch::randn({N, H, D}, torch::TensorOptions().dtype(dtype));
          const double scale = 1.0 / std::sqrt(static_cast<double>(D));
          torch::NoGradGuard no_grad;
          const torch::Tensor got = paged_prefill_attention(
              q, kv.k_cache, kv.v_cache, table(kv.pages), starts, counts, scale, window);
          const torch::Tensor ref = paged_prefill_attention_reference(
              q, kv.k_cache, kv.v_cache, table(kv.pages), starts, counts, scale, window);
          ASSERT_EQ(got.sizes(), q.sizes());
          ASSERT_EQ(got.scalar_type(), dtype);
          int64_t offset = 0;
          for (size_t r = 0; r < counts.size(); ++r) {
            const int64_t n = counts[r], L = lens[r];
            auto slots = torch::arange(starts[r], L, torch::kLong).view({1, n});
            auto allowed = attention_mask(slots, L, window, torch::Tensor());
            auto want = attention(q.narrow(0, offset, n).unsqueeze(0),
                                  kv.k[r].permute({1, 0, 2}).unsqueeze(0),
                                  kv.v[r].permute({1, 0, 2}).unsqueeze(0), allowed, scale)
                            .view({n, H, D});
            for (const auto* t : {&got, &ref}) {
              EXPECT_LE(rel_err(t->narrow(0, offset, n), want), tol_for(dtype))
                  << (t == &got ? "kernel " : "reference ") << c10::toString(dtype) << " D " << D
                  << " H " << H << " Hkv " << Hkv << " window " << window << " row " << r;
            }
            offset += n;
          }
        }
      }
    }
  }
}

TEST(PagedPrefillAttention, RejectsBadInputs) {
  PagedKv kv = make_paged_kv({20}, 16, 2, 16, torch::kFloat32);
  auto q = torch::randn({4, 4, 16});
  // The error message of a call, "" when it succeeds.
  auto error = [&](std::vector<int64_t> starts, std::vector<int64_t> counts) -> std::string {
    torch::NoGradGuard no_grad;
    try {
      paged_prefill_attention(q, kv.k_cache, kv.v_cache, table(kv.pages, 0), starts, counts, 0.25);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error({16}, {4}), "");
  EXPECT_NE(error({16, 0}, {4}).find("2 starts for 1 counts"), std::string::npos);
  EXPECT_NE(error({30}, {4}).find("start + count <= 32"), std::string::npos);
  EXPECT_NE(error({0}, {3}).find("the counts add up to 3"), std::string::npos);
  EXPECT_NE(error({0}, {0}).find("count >= 1"), std::string::npos);
}

}  // namespace
}  // namespace align
