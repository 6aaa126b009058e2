#include "grpo/completion_scoring.h"

#include <ATen/ATen.h>

#include <algorithm>

#include "common/error.h"
#include "model/logprobs.h"

namespace align {

CompletionBatch make_completion_batch(const std::vector<const std::vector<TokenId>*>& prompts,
                                      const std::vector<const std::vector<TokenId>*>& completions,
                                      int64_t pad_id) {
  if (prompts.empty() || prompts.size() != completions.size()) {
    throw Error("make_completion_batch: expected as many prompts as completions, at least one");
  }
  const int64_t B = static_cast<int64_t>(prompts.size());
  CompletionBatch b;
  int64_t T = 1;
  for (int64_t r = 0; r < B; ++r) {
    const auto& p = *prompts[static_cast<size_t>(r)];
    const auto& c = *completions[static_cast<size_t>(r)];
    if (p.empty() || c.empty()) throw Error("make_completion_batch: empty prompt or completion");
    b.valid.push_back(static_cast<int64_t>(p.size() + c.size()));
    b.real_tokens += b.valid.back();
    T = std::max(T, b.valid.back());
    b.completion_width = std::max(b.completion_width, static_cast<int64_t>(c.size()));
  }
  const int64_t Tc = b.completion_width;
  std::vector<int64_t> flat(static_cast<size_t>(B * T), pad_id);
  std::vector<float> mask(static_cast<size_t>(B * Tc), 0.0f);
  std::vector<int64_t> positions, targets, slots;
  for (int64_t r = 0; r < B; ++r) {
    const auto& p = *prompts[static_cast<size_t>(r)];
    const auto& c = *completions[static_cast<size_t>(r)];
    const int64_t P = static_cast<int64_t>(p.size());
    std::copy(p.begin(), p.end(), flat.begin() + r * T);
    std::copy(c.begin(), c.end(), flat.begin() + r * T + P);
    for (int64_t j = 0; j < static_cast<int64_t>(c.size()); ++j) {
      positions.push_back(r * T + P - 1 + j);
      targets.push_back(c[static_cast<size_t>(j)]);
      slots.push_back(r * Tc + j);
      mask[static_cast<size_t>(r * Tc + j)] = 1.0f;
    }
  }
  b.tokens = torch::tensor(flat, torch::kInt64).view({B, T});
  b.mask = torch::tensor(mask, torch::kFloat).view({B, Tc});
  b.positions = torch::tensor(positions, torch::kInt64);
  b.targets = torch::tensor(targets, torch::kInt64);
  b.slots = torch::tensor(slots, torch::kInt64);
  return b;
}

CompletionScores score_completions(const Phi3Model& model, const CompletionBatch& b,
                                   double temperature, bool with_entropy, bool checkpoint_layers,
                                   int64_t chunk_tokens) {
  if (!(temperature > 0)) throw InputError("score_completions: temperature must be positive");
  const torch::Device device = model.device();
  const torch::Tensor h = hidden_at(model, b.tokens, b.valid, b.positions, checkpoint_layers);
  const torch::Tensor targets = b.targets.to(device);
  const int64_t U = h.size(0);
  std::vector<torch::Tensor> values, entropies;  // per chunk [n] fp32
  for (int64_t u = 0; u < U; u += chunk_tokens) {
    const int64_t n = std::min(chunk_tokens, U - u);
    torch::Tensor logits = model.logits(h.narrow(0, u, n));  // [n, V] fp32
    if (temperature != 1) logits = logits / temperature;
    const torch::Tensor logp = at::log_softmax(logits, -1);
    values.push_back(logp.gather(1, targets.narrow(0, u, n).unsqueeze(1)).squeeze(1));
    if (with_entropy) {
      const torch::Tensor lp = logp.detach();
      entropies.push_back(-(lp.exp() * lp).sum(-1));
    }
  }
  const int64_t B = static_cast<int64_t>(b.valid.size()), Tc = b.completion_width;
  const torch::Tensor slots = b.slots.to(device);
  CompletionScores out;
  out.logps =
      at::zeros({B * Tc}, h.options().dtype(at::kFloat)).index_put({slots}, at::cat(values));
  out.logps = out.logps.view({B, Tc});
  if (with_entropy) {
    out.entropies = at::zeros({B * Tc}, h.options().dtype(at::kFloat))
                        .index_put_({slots}, at::cat(entropies))
                        .view({B, Tc});
  }
  return out;
}

}  // namespace align
