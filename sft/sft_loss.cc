#include "sft/sft_loss.h"

#include <ATen/ATen.h>

namespace align {

torch::Tensor sft_loss_sum(const Phi3Model& model, const TrainBatch& batch, bool checkpoint_layers,
                           int64_t chunk_tokens, SftTokenStats* stats) {
  ForwardInput in;
  in.tokens = batch.tokens;
  in.positions = batch.positions;
  in.segments = batch.segments;
  in.logits = LogitsAt::kNone;
  in.return_hidden = true;
  in.checkpoint_layers = checkpoint_layers;
  const torch::Tensor hidden = model.forward(in).hidden;  // [B, T, C]
  const int64_t C = hidden.size(-1);
  const torch::Tensor targets = batch.targets.to(hidden.device()).reshape(-1);  // [B*T]
  const torch::Tensor where = targets.ne(-100).nonzero().squeeze(1);            // [N]
  const torch::Tensor h = hidden.reshape({-1, C}).index_select(0, where);       // [N, C]
  const torch::Tensor t = targets.index_select(0, where);                       // [N]
  torch::Tensor total = at::zeros({}, hidden.options().dtype(at::kFloat));
  for (int64_t i = 0; i < h.size(0); i += chunk_tokens) {
    const int64_t n = std::min(chunk_tokens, h.size(0) - i);
    const torch::Tensor logp = at::log_softmax(model.logits(h.narrow(0, i, n)), -1);  // [n, V]
    total = total - logp.gather(1, t.narrow(0, i, n).unsqueeze(1)).sum();
    if (stats) {
      const at::NoGradGuard no_grad;
      const torch::Tensor lp = logp.detach();
      stats->targets += static_cast<double>(n);
      stats->correct += lp.argmax(-1).eq(t.narrow(0, i, n)).sum().item<double>();
      stats->entropy += -(lp.exp() * lp).sum().item<double>();
    }
  }
  return total;
}

}  // namespace align
