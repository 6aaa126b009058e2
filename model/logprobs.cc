#include "model/logprobs.h"

#include <ATen/ATen.h>

#include "common/error.h"

namespace align {

torch::Tensor hidden_at(const Phi3Model& model, const torch::Tensor& tokens,
                        const std::vector<int64_t>& valid, const torch::Tensor& flat_positions,
                        bool checkpoint_layers) {
  const torch::Device device = model.device();
  ForwardInput in;
  in.tokens = tokens.to(device);
  in.valid = valid;
  in.logits = LogitsAt::kNone;
  in.return_hidden = true;
  in.checkpoint_layers = checkpoint_layers;
  const torch::Tensor hidden = model.forward(in).hidden;  // [B, T, C]
  return hidden.reshape({-1, hidden.size(-1)}).index_select(0, flat_positions.to(device));
}

torch::Tensor logprobs_from_hidden(const Phi3Model& model, const torch::Tensor& hidden,
                                   const torch::Tensor& targets, int64_t chunk_tokens) {
  if (chunk_tokens <= 0) {
    throw InputError("logprobs: chunk_tokens must be positive, got " +
                     std::to_string(chunk_tokens));
  }
  const int64_t N = hidden.size(0);
  auto out = at::empty({N}, hidden.options().dtype(at::kFloat));
  auto targets_dev = targets.to(hidden.device());
  for (int64_t i = 0; i < N; i += chunk_tokens) {
    const int64_t n = std::min(chunk_tokens, N - i);
    auto logp = at::log_softmax(model.logits(hidden.narrow(0, i, n)), -1);  // [n, V] fp32
    out.narrow(0, i, n).copy_(logp.gather(1, targets_dev.narrow(0, i, n).unsqueeze(1)).squeeze(1));
  }
  return out;
}

torch::Tensor token_logprobs(const Phi3Model& model, const torch::Tensor& tokens,
                             const LogprobOptions& options) {
  if (!tokens.defined() || tokens.dim() != 2) {
    throw InputError("token_logprobs: tokens must be a [B, T] int64 tensor");
  }
  ForwardInput in;
  in.tokens = tokens;
  in.positions = options.positions;
  in.segments = options.segments;
  in.logits = LogitsAt::kNone;
  in.return_hidden = true;
  auto hidden = model.forward(in).hidden;  // [B, T, C]
  const int64_t B = tokens.size(0), T = tokens.size(1), C = hidden.size(2);
  auto out = at::zeros({B, T}, hidden.options().dtype(at::kFloat));
  if (T < 2) return out;
  auto h = hidden.narrow(1, 0, T - 1).reshape({B * (T - 1), C});
  auto targets = tokens.narrow(1, 1, T - 1).reshape({B * (T - 1)});
  auto lp = logprobs_from_hidden(model, h, targets, options.chunk_tokens).view({B, T - 1});
  if (options.segments.defined()) {
    auto seg = options.segments.to(hidden.device());
    auto same = seg.narrow(1, 1, T - 1) == seg.narrow(1, 0, T - 1);
    lp = lp.masked_fill(same.logical_not(), 0.0);
  }
  out.narrow(1, 1, T - 1).copy_(lp);
  return out;
}

}  // namespace align
