// Packed segments and selective logits reproduce the plain full forward; longrope factors apply
// by sequence length.
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

class ForwardInputs : public ::testing::TestWithParam<std::string> {};

TEST_P(ForwardInputs, PackedSegmentsEqualSeparateSequences) {
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

TEST_P(ForwardInputs, LogitsOnlyWhereAsked) {
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

INSTANTIATE_TEST_SUITE_P(Golden, ForwardInputs, ::testing::Values("phi4_tiny", "mini_tiny"));

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

}  // namespace
}  // namespace align
