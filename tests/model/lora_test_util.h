// Helpers for the LoRA and activation-checkpointing tests.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "model/phi3_model.h"
#include "model/safetensors.h"
#include "tests/model/model_test_util.h"

namespace align::testing {

inline Phi3Model golden_model(const std::string& name, torch::ScalarType dtype = torch::kFloat) {
  return Phi3Model::load(golden_model_dir(name), dtype, torch::kCPU);
}

inline LoraOptions small_lora(std::vector<std::string> targets = {"qkv_proj", "o_proj",
                                                                  "gate_up_proj", "down_proj"}) {
  LoraOptions o;
  o.rank = 4;
  o.alpha = 8;  // scale 2
  o.target_modules = std::move(targets);
  return o;
}

// Gives every B ~ normal(0, std) (a fresh adapter has B = 0, which would hide most mistakes).
inline void randomize_lora_b(Phi3Model& model, uint64_t seed, double std = 0.05) {
  torch::NoGradGuard no_grad;
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  for (auto& [name, t] : model.lora_parameters()) {
    if (name.find(".lora_B.") == std::string::npos) continue;
    t.copy_(at::empty(t.sizes(), at::kFloat).normal_(0.0, std, gen));
  }
}

// Logits [B, T, V] fp32 for a batch of rows of equal length.
inline torch::Tensor batch_logits(const Phi3Model& model, const torch::Tensor& tokens) {
  ForwardInput in;
  in.tokens = tokens;
  in.logits = LogitsAt::kAll;
  return model.forward(in).logits;
}

// Two rows of random tokens, [2, T].
inline torch::Tensor two_rows(int64_t T, int64_t vocab, uint64_t seed) {
  return torch::stack({token_row(random_tokens(T, vocab, seed))[0],
                       token_row(random_tokens(T, vocab, seed + 1))[0]});
}

// Writes named fp32 tensors into one .safetensors file (for hand-made adapters and test outputs).
inline void write_tensors(const std::string& path,
                          const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  std::vector<TensorSource> sources;
  for (const auto& [name, t] : tensors) {
    auto x = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
    sources.push_back({name, Dtype::F32, x.sizes().vec(),
                       [x](const auto& sink) { sink(x.data_ptr(), x.nbytes()); }});
  }
  write_safetensors(path, sources);
}

}  // namespace align::testing
