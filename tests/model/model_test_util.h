// Helpers for the model tests: the golden models written by tools/golden_model.py and small
// builders for forward inputs.
#pragma once

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "model/phi3_model.h"
#include "tests/test_util.h"

namespace align::testing {

// "phi4_tiny" (sharded, untied, default RoPE) or "mini_tiny" (tied, partial rotary, longrope,
// sliding window 20).
inline std::string golden_model_dir(const std::string& name) {
  return golden_path("model/" + name);
}

inline nlohmann::json golden_record(const std::string& name) {
  return nlohmann::json::parse(read_file(golden_path("model/" + name + ".json")));
}

inline torch::Tensor token_row(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kLong).view({1, -1});
}

// Deterministic pseudo-random token ids in [0, vocab).
inline std::vector<int64_t> random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::vector<int64_t> out;
  uint64_t x = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (int64_t i = 0; i < n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    out.push_back(static_cast<int64_t>((x >> 33) % static_cast<uint64_t>(vocab)));
  }
  return out;
}

// Full-sequence logits [T, V] of one row, without a cache.
inline torch::Tensor full_logits(const Phi3Model& model, const std::vector<int64_t>& ids) {
  ForwardInput in;
  in.tokens = token_row(ids);
  in.logits = LogitsAt::kAll;
  return model.forward(in).logits[0];
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kCPU, torch::kDouble) - b.to(torch::kCPU, torch::kDouble))
      .abs()
      .max()
      .item<double>();
}

}  // namespace align::testing
