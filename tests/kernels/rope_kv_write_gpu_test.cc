// RoPE + paged KV write: the CPU reference against the rotation derived pair by pair and the cache
// slots it must (and must not) touch, and the CUDA kernel against the reference over awkward shapes
// (N 1/19/64, partial rotary, odd head dims, strided inputs, padding slots) and both dtypes. GPU
// tests skip (with a message) when no GPU is present.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/rms_norm_op.h"
#include "kernels/rope_kv_write_op.h"
#include "tests/gpu_test_util.h"

namespace align {
namespace {

using testing::close;

// The rotation written pair by pair from its definition (Hugging Face's rotate_half pairs dim d
// with d + R/2): (x_d, x_{d+R/2}) -> (x_d cos_d - x_{d+R/2} sin_d,
// x_{d+R/2} cos_{d+R/2} + x_d sin_{d+R/2}); dims [R, D) unchanged. x [B, T, heads, D]; cos, sin
// [B, T, R]. Each product and sum rounds as apply_rope's do, so the two agree bit for bit.
torch::Tensor model_apply_rope(const torch::Tensor& x, const torch::Tensor& cos,
                               const torch::Tensor& sin) {
  const int64_t half = cos.size(-1) / 2;
  auto c = cos.unsqueeze(2);
  auto s = sin.unsqueeze(2);
  auto lo = x.narrow(-1, 0, half);
  auto hi = x.narrow(-1, half, half);
  auto out = x.clone();
  out.narrow(-1, 0, half).copy_(lo * c.narrow(-1, 0, half) - hi * s.narrow(-1, 0, half));
  out.narrow(-1, half, half).copy_(hi * c.narrow(-1, half, half) + lo * s.narrow(-1, half, half));
  return out;
}

// Rope::cos_sin's numerics (default RoPE): fp32 angles, cat(freqs, freqs), cast. positions [N].
std::pair<torch::Tensor, torch::Tensor> hf_cos_sin(const torch::Tensor& positions, int64_t rotary,
                                                   double theta, torch::ScalarType dtype) {
  auto exponent = torch::arange(0, rotary, 2, torch::kLong).to(torch::kFloat32) / rotary;
  auto inv = torch::reciprocal(torch::pow(theta, exponent)).to(positions.device());
  auto freqs = positions.to(torch::kFloat32).unsqueeze(-1) * inv;  // [N, R/2]
  auto emb = torch::cat({freqs, freqs}, -1);                       // [N, R]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

struct Shape {
  int64_t heads, kv_heads, head_dim, rotary_dim;
};

#define REQUIRE_GPU() REQUIRE_GPU_WITH(cuda_kernels_built())

TEST(RopeKvWriteReference, RotatesLikeApplyRopeAndWritesOnlyTheSlots) {
  torch::manual_seed(0);
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    for (Shape sh : {Shape{4, 2, 16, 16}, Shape{6, 2, 16, 12}, Shape{3, 1, 10, 6}}) {
      const int64_t n = 7, pages = 5, page_size = 4, hkv = sh.kv_heads, d = sh.head_dim;
      auto opts = torch::TensorOptions().dtype(dtype);
      torch::Tensor qkv = torch::randn({n, (sh.heads + 2 * hkv) * d}, opts);
      auto [cos, sin] =
          hf_cos_sin(torch::randint(0, 4000, {n}, torch::kLong), sh.rotary_dim, 10000.0, dtype);
      torch::Tensor slots = torch::randperm(pages * page_size, torch::kLong).narrow(0, 0, n);
      torch::Tensor k_cache = torch::randn({pages, page_size, hkv, d}, opts);
      torch::Tensor v_cache = torch::randn({pages, page_size, hkv, d}, opts);
      torch::Tensor k_before = k_cache.clone(), v_before = v_cache.clone();

      torch::Tensor q = rope_kv_write_reference(qkv, cos, sin, slots, k_cache, v_cache);

      auto parts = qkv.split_with_sizes({sh.heads * d, hkv * d, hkv * d}, -1);
      auto c = cos.unsqueeze(0), s = sin.unsqueeze(0);
      torch::Tensor want_q = model_apply_rope(parts[0].reshape({1, n, sh.heads, d}), c, s);
      torch::Tensor want_k = model_apply_rope(parts[1].reshape({1, n, hkv, d}), c, s)[0];
      torch::Tensor want_v = parts[2].reshape({n, hkv, d});
      EXPECT_TRUE(torch::equal(q, want_q[0]));
      // Written slots hold k and v; every other slot is as it was.
      torch::Tensor kf = k_cache.view({-1, hkv, d}), vf = v_cache.view({-1, hkv, d});
      EXPECT_TRUE(torch::equal(kf.index_select(0, slots), want_k));
      EXPECT_TRUE(torch::equal(vf.index_select(0, slots), want_v));
      torch::Tensor untouched = torch::ones({pages * page_size}, torch::kBool);
      untouched.index_fill_(0, slots, false);
      EXPECT_TRUE(
          torch::equal(kf.index({untouched}), k_before.view({-1, hkv, d}).index({untouched})));
      EXPECT_TRUE(
          torch::equal(vf.index({untouched}), v_before.view({-1, hkv, d}).index({untouched})));
      // On CPU the op is the reference.
      torch::Tensor k2 = k_before.clone(), v2 = v_before.clone();
      EXPECT_TRUE(torch::equal(rope_kv_write(qkv, cos, sin, slots, k2, v2), q));
      EXPECT_TRUE(torch::equal(k2, k_cache));
      EXPECT_TRUE(torch::equal(v2, v_cache));
    }
  }
}

TEST(RopeKvWriteReference, HandRotationPartialRotaryAndPositionZero) {
  // D 6, R 4: a quarter turn maps the rotary dims x -> rotate_half(x) = (-x2, -x3, x0, x1); dims
  // 4, 5 pass through. H 1, Hkv 1.
  torch::Tensor qkv = torch::arange(1, 19, torch::kFloat32).view({1, 18});
  torch::Tensor cos = torch::zeros({1, 4}), sin = torch::ones({1, 4});
  torch::Tensor k_cache = torch::zeros({1, 2, 1, 6}), v_cache = torch::zeros({1, 2, 1, 6});
  torch::Tensor slots = torch::tensor({1}, torch::kLong);
  torch::Tensor q = rope_kv_write(qkv, cos, sin, slots, k_cache, v_cache);
  EXPECT_TRUE(torch::equal(q, torch::tensor({-3.f, -4.f, 1.f, 2.f, 5.f, 6.f}).view({1, 1, 6})));
  EXPECT_TRUE(torch::equal(k_cache[0][1][0], torch::tensor({-9.f, -10.f, 7.f, 8.f, 11.f, 12.f})));
  EXPECT_TRUE(torch::equal(v_cache[0][1][0], torch::arange(13, 19, torch::kFloat32)));
  EXPECT_TRUE(torch::equal(k_cache[0][0], torch::zeros({1, 6})));
  // Position 0 (cos 1, sin 0) leaves q and k as they came, in bf16 too.
  torch::Tensor qkv16 = torch::randn({2, 18}).to(torch::kBFloat16);
  auto [c0, s0] = hf_cos_sin(torch::zeros({2}, torch::kLong), 4, 10000.0, torch::kBFloat16);
  torch::Tensor k16 = torch::zeros({1, 2, 1, 6}, torch::kBFloat16), v16 = k16.clone();
  torch::Tensor q16 = rope_kv_write(qkv16, c0, s0, torch::tensor({0, 1}, torch::kLong), k16, v16);
  EXPECT_TRUE(torch::equal(q16.view({2, 6}), qkv16.narrow(1, 0, 6)));
  EXPECT_TRUE(torch::equal(k16.view({2, 6}), qkv16.narrow(1, 6, 6)));
}

TEST(RopeKvWriteReference, NegativeSlotsArePaddingAndWriteNothing) {
  torch::manual_seed(1);
  torch::Tensor qkv = torch::randn({3, 4 * 8});  // H 2, Hkv 1, D 8
  auto [cos, sin] = hf_cos_sin(torch::tensor({5, 6, 7}, torch::kLong), 8, 10000.0, torch::kFloat32);
  torch::Tensor k_cache = torch::randn({2, 4, 1, 8}), v_cache = torch::randn({2, 4, 1, 8});
  torch::Tensor k_before = k_cache.clone(), v_before = v_cache.clone();
  torch::Tensor slots = torch::tensor({-1, 6, -1}, torch::kLong);
  torch::Tensor q = rope_kv_write(qkv, cos, sin, slots, k_cache, v_cache);
  EXPECT_EQ(q.sizes(), (std::vector<int64_t>{3, 2, 8}));
  torch::Tensor changed = (k_cache != k_before).view({8, -1}).any(1);
  EXPECT_TRUE(torch::equal(changed.nonzero().view(-1), torch::tensor({6}, torch::kLong)));
  EXPECT_TRUE(torch::equal(v_cache.view({8, 8})[6], qkv[1].narrow(0, 24, 8)));
  k_before.view({8, 8})[6] = k_cache.view({8, 8})[6];
  v_before.view({8, 8})[6] = v_cache.view({8, 8})[6];
  EXPECT_TRUE(torch::equal(k_cache, k_before));
  EXPECT_TRUE(torch::equal(v_cache, v_before));
}

TEST(RopeKvWriteReference, RejectsInconsistentInputs) {
  torch::Tensor qkv = torch::randn({2, 4 * 8});  // H 2, Hkv 1, D 8
  torch::Tensor cos = torch::ones({2, 8}), sin = torch::zeros({2, 8});
  torch::Tensor slots = torch::tensor({0, 1}, torch::kLong);
  torch::Tensor k = torch::zeros({2, 4, 1, 8}), v = torch::zeros({2, 4, 1, 8});
  EXPECT_ANY_THROW(rope_kv_write(qkv, cos, sin, torch::tensor({0, 8}, torch::kLong), k, v));
  EXPECT_ANY_THROW(rope_kv_write(qkv, cos, sin, slots.to(torch::kInt32), k, v));
  EXPECT_ANY_THROW(rope_kv_write(qkv, cos, sin, torch::tensor({0}, torch::kLong), k, v));
  EXPECT_ANY_THROW(rope_kv_write(torch::randn({2, 31}), cos, sin, slots, k, v));
  EXPECT_ANY_THROW(rope_kv_write(torch::randn({2, 2 * 8}), cos, sin, slots, k, v));  // H = 0
  EXPECT_ANY_THROW(rope_kv_write(qkv, torch::ones({2, 10}), torch::zeros({2, 10}), slots, k, v));
  EXPECT_ANY_THROW(rope_kv_write(qkv, torch::ones({2, 7}), torch::zeros({2, 7}), slots, k, v));
  EXPECT_ANY_THROW(rope_kv_write(qkv, cos, torch::zeros({2, 6}), slots, k, v));
  // Any shape of N * R elements is taken, e.g. Rope::cos_sin's [B, T, R].
  EXPECT_NO_THROW(rope_kv_write(qkv, cos.view({1, 2, 8}), sin, slots, k, v));
  EXPECT_ANY_THROW(rope_kv_write(qkv, cos.to(torch::kBFloat16), sin, slots, k, v));
  torch::Tensor v_other = torch::zeros({2, 4, 2, 8});
  EXPECT_ANY_THROW(rope_kv_write(qkv, cos, sin, slots, k, v_other));
  torch::Tensor k_strided = torch::zeros({4, 2, 1, 8}).transpose(0, 1);
  EXPECT_ANY_THROW(rope_kv_write(qkv, cos, sin, slots, k_strided, v));
}

TEST(RopeKvWriteKernel, MatchesReferenceOverShapesAndDtypes) {
  REQUIRE_GPU();
  torch::manual_seed(0);
  const Shape shapes[] = {
      {40, 10, 128, 128},  // Phi-4
      {24, 8, 128, 96},    // Phi-4-mini: partial rotary
      {3, 1, 10, 6},       // odd sizes, R < D
      {4, 4, 8, 8},        // no grouping
  };
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
    // Both sides round the two products and the sum to the dtype one by one, so they are expected
    // to agree bit for bit; the tolerance allows one rounding step of the largest element.
    const double rtol = dtype == torch::kFloat32 ? 1e-6 : 1.0 / 128;
    auto opts = torch::TensorOptions().dtype(dtype).device(torch::kCUDA);
    for (const Shape& sh : shapes) {
      for (int64_t n : {1, 19, 64}) {
        for (bool random_angles : {false, true}) {
          const int64_t hkv = sh.kv_heads, d = sh.head_dim, r = sh.rotary_dim;
          const int64_t page_size = random_angles ? 5 : 16;
          const int64_t pages = (n + page_size - 1) / page_size + 2;
          const int64_t width = (sh.heads + 2 * hkv) * d;
          // qkv as a column slice of a wider buffer: rows width + 8 elements apart.
          torch::Tensor qkv = torch::randn({n, width + 8}, opts).narrow(1, 4, width);
          torch::Tensor cos, sin;
          if (random_angles) {
            // Unrelated cos and sin values per dim catch a swapped pair index; sin has strided
            // rows.
            cos = torch::randn({1, n, r}, opts);
            sin = torch::randn({n, r + 3}, opts).narrow(1, 2, r);
          } else {
            auto positions = torch::randint(0, 16384, {n}, torch::kLong).to(torch::kCUDA);
            std::tie(cos, sin) = hf_cos_sin(positions, r, 250000.0, dtype);
          }
          torch::Tensor slots =
              torch::randperm(pages * page_size, torch::kLong).narrow(0, 0, n).to(torch::kCUDA);
          if (n > 1) slots.index_put_({n / 2}, -1);  // one padding token
          torch::Tensor k_cache = torch::randn({pages, page_size, hkv, d}, opts);
          torch::Tensor v_cache = torch::randn({pages, page_size, hkv, d}, opts);
          torch::Tensor k_ref = k_cache.clone(), v_ref = v_cache.clone();

          torch::Tensor q = rope_kv_write_cuda(qkv, cos, sin, slots, k_cache, v_cache);
          torch::Tensor want_q = rope_kv_write_reference(qkv, cos, sin, slots, k_ref, v_ref);
          const double atol = rtol * want_q.abs().max().item<double>();
          const std::string where =
              c10::str(c10::toString(dtype), " H ", sh.heads, " Hkv ", hkv, " D ", d, " R ", r,
                       " N ", n, " random angles ", random_angles);
          EXPECT_TRUE(close(q, want_q, rtol, atol)) << where;
          EXPECT_TRUE(close(k_cache, k_ref, rtol, atol)) << where;
          EXPECT_TRUE(torch::equal(v_cache, v_ref)) << where;
        }
      }
    }
  }
}

TEST(RopeKvWriteKernel, DispatchesToTheKernelAndRejectsBadInputs) {
  REQUIRE_GPU();
  torch::manual_seed(2);
  auto opts = torch::TensorOptions().dtype(torch::kBFloat16).device(torch::kCUDA);
  torch::Tensor qkv = torch::randn({3, 4 * 16}, opts);  // H 2, Hkv 1, D 16
  auto [cos, sin] =
      hf_cos_sin(torch::tensor({0, 9, 70}, torch::kLong).to(torch::kCUDA), 16, 1e4, at::kBFloat16);
  torch::Tensor slots = torch::tensor({4, 0, 7}, torch::kLong).to(torch::kCUDA);
  torch::Tensor k = torch::zeros({2, 4, 1, 16}, opts), v = torch::zeros({2, 4, 1, 16}, opts);
  torch::Tensor k2 = k.clone(), v2 = v.clone();
  torch::Tensor q = rope_kv_write(qkv, cos, sin, slots, k, v);
  torch::Tensor q2 = rope_kv_write_cuda(qkv, cos, sin, slots, k2, v2);
  EXPECT_TRUE(torch::equal(q, q2));
  EXPECT_TRUE(torch::equal(k, k2));
  EXPECT_TRUE(torch::equal(v, v2));
  EXPECT_ANY_THROW(rope_kv_write_cuda(qkv, cos, sin, slots.cpu(), k, v));
  EXPECT_ANY_THROW(rope_kv_write_cuda(qkv, cos.to(torch::kFloat32), sin, slots, k, v));
  EXPECT_ANY_THROW(rope_kv_write_cuda(qkv.to(torch::kFloat16), cos.to(torch::kFloat16),
                                      sin.to(torch::kFloat16), slots, k.to(torch::kFloat16),
                                      v.to(torch::kFloat16)));
  torch::Tensor k_strided = torch::zeros({4, 2, 1, 16}, opts).transpose(0, 1);
  EXPECT_ANY_THROW(rope_kv_write_cuda(qkv, cos, sin, slots, k_strided, v));
}

}  // namespace
}  // namespace align
