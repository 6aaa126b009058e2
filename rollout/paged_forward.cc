#include "rollout/paged_forward.h"

#include <ATen/ATen.h>

#include <set>
#include <string>
#include <utility>

#include "common/error.h"
#include "data/token_range.h"
#include "kernels/rms_norm_op.h"
#include "kernels/rope_kv_write_op.h"
#include "model/attention.h"
#include "model/decoder_layer.h"
#include "rollout/paged_forward_attention.h"
#include "rollout/paged_step.h"

namespace align {
namespace {

[[noreturn]] void bad_input(const std::string& what) {
  throw InputError("paged_forward: " + what);
}

void check_rows(const ModelConfig& c, const PagedKvCache& cache,
                const std::vector<PagedRow>& rows) {
  if (rows.empty()) bad_input("no rows");
  std::set<int64_t> seen;
  std::vector<std::pair<int64_t, int64_t>> appends;
  for (size_t r = 0; r < rows.size(); ++r) {
    const PagedRow& row = rows[r];
    const std::string where =
        "row " + std::to_string(r) + " (sequence " + std::to_string(row.seq) + ")";
    if (!cache.contains(row.seq)) bad_input(where + " is not in the cache");
    if (!seen.insert(row.seq).second) bad_input(where + " appears twice");
    if (row.tokens.empty()) bad_input(where + " has no new tokens");
    check_token_ids(row.tokens, c.vocab_size, "paged_forward: " + where);
    const int64_t end = cache.length(row.seq) + static_cast<int64_t>(row.tokens.size());
    if (c.uses_long_factors(end) && !cache.long_rope(row.seq)) {
      bad_input(where + " grows to " + std::to_string(end) +
                " tokens, past original_max_position_embeddings " +
                std::to_string(c.original_max_position_embeddings) +
                " of a longrope model, onto keys rotated with the short factors; transformers runs "
                "such a call with the long factors at every position (docs/longrope.md): prefill "
                "the whole sequence into one created with long_rope");
    }
    appends.emplace_back(row.seq, static_cast<int64_t>(row.tokens.size()));
  }
  const int64_t pages = cache.pages_to_append(appends);
  if (pages > cache.free_pages()) {
    throw Error("paged_forward: the rows need up to " + std::to_string(pages) + " pages, " +
                std::to_string(cache.free_pages()) + " are free");
  }
}

torch::Tensor long_tensor(const std::vector<int64_t>& v, torch::Device device) {
  return at::tensor(v, at::kLong).to(device);
}

// The decoder layers' attention over the cache in one step: RoPE + K/V write, then attention.
class PagedAttentionBackend final : public AttentionBackend {
 public:
  PagedAttentionBackend(const ModelConfig& c, PagedKvCache& cache, const PagedStep& step,
                        torch::Tensor cos, torch::Tensor sin)
      : cache_(cache),
        step_(step),
        cos_(std::move(cos)),
        sin_(std::move(sin)),
        scale_(attention_scale(c.head_dim)),
        sliding_window_(c.sliding_window) {}

  // qkv [N, H*D + 2*Hkv*D] -> [N, H*D].
  torch::Tensor attend(int64_t layer, const torch::Tensor& qkv) const override {
    const auto l = static_cast<size_t>(layer);
    auto q = rope_kv_write(qkv, cos_, sin_, step_.slots, cache_.k[l], cache_.v[l]);  // [N, H, D]
    auto out = paged_attention(q, cache_.k[l], cache_.v[l], step_.gathered, step_.decode,
                               step_.prefill, scale_, sliding_window_);
    return out.view({step_.num_tokens, -1});
  }

 private:
  PagedKvCache& cache_;
  const PagedStep& step_;
  torch::Tensor cos_, sin_;  // [1, N, R]
  double scale_;
  int64_t sliding_window_;
};

}  // namespace

PagedStep plan_paged_step(const Phi3Model& model, PagedKvCache& cache,
                          const std::vector<PagedRow>& rows, bool shared_prefix_on_cuda) {
  const ModelConfig& c = model.config();
  check_rows(c, cache, rows);
  const auto device = model.device();
  const bool in_place = decode_reads_pages(cache);
  const bool prefill_in_place = prefill_reads_pages(cache);
  PagedStep step;

  // Slots, positions and the attention rows of the packed batch.
  std::vector<int64_t> tokens, positions, slots, last, decode_seqs, decode_offsets;
  std::vector<int64_t> prefill_seqs, prefill_offsets, prefill_counts;
  std::vector<uint8_t> use_long;  // per token: the sequence's keys use the long factors
  for (const PagedRow& row : rows) {
    const int64_t start = cache.length(row.seq);
    const int64_t count = static_cast<int64_t>(row.tokens.size());
    const int64_t offset = static_cast<int64_t>(tokens.size());
    cache.append(row.seq, count);
    for (int64_t t = 0; t < count; ++t) {
      tokens.push_back(row.tokens[static_cast<size_t>(t)]);
      positions.push_back(start + t);
      use_long.push_back(cache.long_rope(row.seq) ? 1 : 0);
      slots.push_back(cache.slot(row.seq, start + t));
    }
    if (row.logits) last.push_back(offset + count - 1);
    // A decode row that reads the pages in place needs only its block table (no per-token work on
    // the host); the reference reads every key of the row through its slots.
    if (in_place && count == 1) {
      decode_seqs.push_back(row.seq);
      decode_offsets.push_back(offset);
      continue;
    }
    if (prefill_in_place && count > 1) {
      prefill_seqs.push_back(row.seq);
      prefill_offsets.push_back(offset);
      prefill_counts.push_back(count);
      continue;
    }
    PagedAttentionRow a;
    a.offset = offset;
    a.count = count;
    a.start = start;
    std::vector<int64_t> row_slots;
    row_slots.reserve(static_cast<size_t>(start + count));
    for (int64_t t = 0; t < start + count; ++t)
      row_slots.push_back(cache.slot(row.seq, t));
    a.slots = long_tensor(row_slots, device);
    step.gathered.push_back(std::move(a));
  }
  step.num_tokens = static_cast<int64_t>(tokens.size());
  step.tokens = long_tensor(tokens, device);
  step.positions = long_tensor(positions, device).view({1, step.num_tokens});
  step.slots = long_tensor(slots, device);
  if (!last.empty()) step.logits_at = long_tensor(last, device);
  if (c.rope_type == RopeType::kLongrope) {
    step.long_mask = at::tensor(at::ArrayRef<uint8_t>(use_long), at::kByte)
                         .to(at::kBool)
                         .to(device)
                         .view({1, step.num_tokens});
  }
  step.decode = paged_decode_batch(cache, decode_seqs, decode_offsets, shared_prefix_on_cuda);
  step.prefill = paged_prefill_batch(cache, prefill_seqs, prefill_offsets, prefill_counts);
  return step;
}

torch::Tensor run_paged_step(const Phi3Model& model, PagedKvCache& cache, const PagedStep& step) {
  torch::NoGradGuard no_grad;
  const ModelConfig& c = model.config();
  auto [cos, sin] =
      model.rope().cos_sin(step.positions, step.long_mask, model.dtype());  // [1, N, R]
  const PagedAttentionBackend attention(c, cache, step, std::move(cos), std::move(sin));
  LoraApply lora = model.lora_apply();
  lora.training = false;  // sampling: no dropout

  const ModelWeights& weights = model.weights();
  auto h = weights.embed.index_select(0, step.tokens);  // [N, C]
  for (size_t l = 0; l < weights.layers.size(); ++l)
    h = decoder_layer(c, weights.layers[l], lora, h, static_cast<int64_t>(l), attention);
  if (!step.logits_at.defined()) return torch::Tensor();
  auto h_last = h.index_select(0, step.logits_at);  // [rows with logits, C]
  return model.logits(rms_norm(h_last, weights.norm, c.rms_norm_eps));
}

torch::Tensor paged_forward(const Phi3Model& model, PagedKvCache& cache,
                            const std::vector<PagedRow>& rows) {
  torch::NoGradGuard no_grad;
  const PagedStep step = plan_paged_step(model, cache, rows);
  return run_paged_step(model, cache, step);
}

}  // namespace align
