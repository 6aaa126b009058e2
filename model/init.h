// The tensors a config implies, and random initialisation like Hugging Face's Phi3 _init_weights:
// linear and embedding weights ~ normal(0, initializer_range), the pad_token_id row of the
// embedding zeroed (nn.Embedding's padding_idx), RMSNorm weights 1. Values are drawn in fp32 and
// cast, so a bf16 model is the rounded fp32 one. Each tensor draws from its own generator seeded
// from (seed, tensor name): the values do not depend on which tensors are produced or in what
// order, so a 14B model can be written shard by shard without ever being whole in memory.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "model/config.h"
#include "model/phi3_model.h"

namespace align {

// (Hugging Face name, shape) of every stored tensor, in checkpoint order; no lm_head when tied.
TensorShapes model_tensor_shapes(const ModelConfig& config);

// One lazy TensorToSave per tensor of model_tensor_shapes(config), producing `dtype` on the CPU.
std::vector<TensorToSave> random_init_tensors(const ModelConfig& config, uint64_t seed,
                                              torch::ScalarType dtype = torch::kBFloat16);

// Writes config.json (to_hf_json, dtype set to `dtype`) and a random checkpoint into `dir`.
void write_random_model(const std::string& dir, const ModelConfig& config, uint64_t seed,
                        torch::ScalarType dtype = torch::kBFloat16,
                        int64_t max_shard_bytes = 5'000'000'000);

// The same random weights as an in-memory model.
Phi3Model random_model(const ModelConfig& config, uint64_t seed, torch::ScalarType dtype,
                       torch::Device device = torch::kCPU);

}  // namespace align
