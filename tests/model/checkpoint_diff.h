// Comparing two saved models in tests: the largest absolute difference between their tensors.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <string>

#include "model/checkpoint.h"

namespace align::testing {

// Largest absolute difference between the tensors of two checkpoints (same names required).
inline double max_weight_diff(const std::string& a, const std::string& b) {
  const Checkpoint x = Checkpoint::open(a), y = Checkpoint::open(b);
  EXPECT_EQ(x.names(), y.names());
  double diff = 0;
  for (const std::string& name : x.names()) {
    const torch::Tensor u = x.get(name, torch::kFloat64, torch::kCPU);
    const torch::Tensor v = y.get(name, torch::kFloat64, torch::kCPU);
    diff = std::max(diff, (u - v).abs().max().item<double>());
  }
  return diff;
}

}  // namespace align::testing
