// The CPU twin of rope_kv_write (kernels/rope_kv_write_cpu.h) against its reference, bit for bit:
// the rotated queries and both caches after the write (every slot, so a write to a wrong or a
// padding slot shows), over full and partial rotary, odd head dims, strided qkv rows, GQA shapes
// and padding slots; and its checks.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/error.h"
#include "kernels/rope_kv_write_op.h"

namespace align {
namespace {

struct Case {
  int64_t tokens, heads, kv_heads, head_dim, rotary;
  bool strided, padding;
};

TEST(RopeKvWriteCpu, BitIdenticalToTheReference) {
  torch::manual_seed(0);
  const int64_t pages = 5, page_size = 16;
  for (const Case& c : {Case{1, 12, 4, 64, 64, false, false}, Case{19, 3, 1, 6, 4, true, true},
                        Case{64, 8, 8, 33, 32, false, true}, Case{7, 4, 2, 16, 16, true, false}}) {
    const int64_t width = (c.heads + 2 * c.kv_heads) * c.head_dim;
    torch::Tensor qkv = torch::randn({c.tokens, width + (c.strided ? 5 : 0)}) * 2;
    if (c.strided) qkv = qkv.narrow(1, 3, width);
    const torch::Tensor angles = torch::rand({c.tokens, c.rotary}) * 40;
    const torch::Tensor cos = angles.cos(), sin = angles.sin();
    torch::Tensor slots = torch::randperm(pages * page_size).narrow(0, 0, c.tokens);
    if (c.padding) slots.index_put_({torch::arange(0, c.tokens, 3)}, -1);
    const torch::Tensor k0 = torch::randn({pages, page_size, c.kv_heads, c.head_dim});
    const torch::Tensor v0 = torch::randn_like(k0);
    torch::Tensor k_ref = k0.clone(), v_ref = v0.clone(), k_twin = k0.clone(), v_twin = v0.clone();
    const torch::Tensor q_ref = rope_kv_write_reference(qkv, cos, sin, slots, k_ref, v_ref);
    const torch::Tensor q_twin = rope_kv_write_cpu(qkv, cos, sin, slots, k_twin, v_twin);
    const std::string what = std::to_string(c.tokens) + " tokens, D " + std::to_string(c.head_dim) +
                             ", R " + std::to_string(c.rotary);
    EXPECT_TRUE(torch::equal(q_twin, q_ref)) << what;
    EXPECT_TRUE(torch::equal(k_twin, k_ref)) << what;
    EXPECT_TRUE(torch::equal(v_twin, v_ref)) << what;
    EXPECT_FALSE(torch::equal(k_twin, k0)) << what << ": the write happened";
    torch::NoGradGuard no_grad;  // the dispatch takes the twin here
    torch::Tensor k_op = k0.clone(), v_op = v0.clone();
    EXPECT_TRUE(torch::equal(rope_kv_write(qkv, cos, sin, slots, k_op, v_op), q_ref)) << what;
    EXPECT_TRUE(torch::equal(k_op, k_ref)) << what;
  }
}

TEST(RopeKvWriteCpu, RejectsWhatTheReferenceRejects) {
  const torch::Tensor qkv = torch::randn({2, 4 * 8});
  const torch::Tensor cos = torch::ones({2, 8}), sin = torch::zeros({2, 8});
  torch::Tensor k = torch::zeros({2, 4, 1, 8}), v = torch::zeros({2, 4, 1, 8});
  EXPECT_THROW(rope_kv_write_cpu(qkv, cos, sin, torch::tensor({0, 8}, torch::kLong), k, v), Error)
      << "slot 8 of 8";
  EXPECT_THROW(rope_kv_write_cpu(qkv.to(torch::kBFloat16), cos.to(torch::kBFloat16),
                                 sin.to(torch::kBFloat16), torch::tensor({0, 1}, torch::kLong),
                                 k.to(torch::kBFloat16), v.to(torch::kBFloat16)),
               Error);
  EXPECT_THROW(rope_kv_write_cpu(qkv, cos, sin, torch::tensor({0}, torch::kLong), k, v), Error);
}

}  // namespace
}  // namespace align
