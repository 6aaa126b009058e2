#include "rollout/decode_graphs.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>

#include "common/error.h"
#include "kernels/kernel_support.h"
#include "rollout/decode_buckets.h"

#ifdef ALIGN_WITH_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>

#include "kernels/paged_attention.h"
#endif

namespace align {

struct DecodeGraphs::Bucket {
  int64_t size = 0;
  PagedStep step;        // the persistent buffers, as run_paged_step reads them
  torch::Tensor logits;  // [size, V]: the captured graph's output
#ifdef ALIGN_WITH_CUDA
  std::unique_ptr<at::cuda::CUDAGraph> graph;
#endif
};

DecodeGraphs::DecodeGraphs(const Phi3Model& model, PagedKvCache& cache, bool capture)
    : model_(model), cache_(cache), capture_(capture) {
  if (capture && (!model.device().is_cuda() || !cuda_kernels_built())) {
    throw InputError(
        "cuda_graphs: capturing the decode step needs a model on a CUDA device and a build with "
        "the CUDA kernels; the model is on " +
        model.device().str() + (cuda_kernels_built() ? "" : " and this build has no CUDA kernels"));
  }
#ifdef ALIGN_WITH_CUDA
  // A head dim without a compiled decode kernel takes the op's reference, which reads the
  // lengths on the host (a sync no capture allows): such models decode eagerly.
  if (capture &&
      !kernels::paged_attention_supports_head_dim(static_cast<int>(model.config().head_dim))) {
    capture_ = false;
    eager_only_ = true;
  }
#endif
  const int64_t positions = model.config().max_position_embeddings;
  const int64_t by_model = positions > 0 ? cache.pages_for(positions) : cache.num_pages();
  width_pages_ = std::max<int64_t>(1, std::min(cache.num_pages(), by_model));
}

DecodeGraphs::~DecodeGraphs() = default;

bool DecodeGraphs::serves(const PagedStep& step) const {
  const int64_t B = step.num_tokens;
  const PagedDecodeBatch& d = step.decode;
  return !eager_only_ && B > 0 && B <= decode_bucket_sizes().back() && step.gathered.empty() &&
         step.prefill.counts.empty() && d.max_context_len > 0 && !d.shared && d.offsets.defined() &&
         d.offsets.size(0) == B && step.logits_at.defined() && step.logits_at.size(0) == B &&
         d.max_context_len <= width_pages_ * cache_.page_size();
}

DecodeGraphs::Bucket& DecodeGraphs::bucket_for(int64_t rows) {
  const int64_t n = decode_bucket(rows);
  std::unique_ptr<Bucket>& slot = buckets_[n];
  if (slot) return *slot;
  slot = std::make_unique<Bucket>();
  slot->size = n;
  const auto device = cache_.k.front().device();
  const auto longs = at::TensorOptions().dtype(at::kLong).device(device);
  const auto ints = at::TensorOptions().dtype(at::kInt).device(device);
  PagedStep& s = slot->step;
  s.num_tokens = n;
  s.tokens = at::zeros({n}, longs);
  s.positions = at::zeros({1, n}, longs);
  s.slots = at::full({n}, -1, longs);
  s.logits_at = at::arange(n, longs);
  if (model_.config().rope_type == RopeType::kLongrope) {
    s.long_mask = at::zeros({1, n}, at::TensorOptions().dtype(at::kBool).device(device));
  }
  s.decode.offsets = at::arange(n, longs);
  s.decode.block_tables = at::zeros({n, width_pages_}, ints);
  s.decode.context_lens = at::ones({n}, ints);
  s.decode.max_context_len = width_pages_ * cache_.page_size();
  return *slot;
}

torch::Tensor DecodeGraphs::run(const PagedStep& step) {
  if (!serves(step)) throw Error("DecodeGraphs::run: a step it does not serve");
  torch::NoGradGuard no_grad;
  const int64_t B = step.num_tokens;
  Bucket& b = bucket_for(B);
  PagedStep& s = b.step;
  // The real rows first, then padding (the buffers may hold an earlier, larger step's rows).
  s.tokens.narrow(0, 0, B).copy_(step.tokens);
  s.positions.narrow(1, 0, B).copy_(step.positions);
  s.slots.narrow(0, 0, B).copy_(step.slots);
  s.decode.context_lens.narrow(0, 0, B).copy_(step.decode.context_lens);
  const int64_t w = step.decode.block_tables.size(1);
  s.decode.block_tables.narrow(0, 0, B).narrow(1, 0, w).copy_(step.decode.block_tables);
  if (s.long_mask.defined()) s.long_mask.narrow(1, 0, B).copy_(step.long_mask);
  if (const int64_t pad = b.size - B; pad > 0) {
    s.tokens.narrow(0, B, pad).zero_();
    s.positions.narrow(1, B, pad).zero_();
    s.slots.narrow(0, B, pad).fill_(-1);
    s.decode.context_lens.narrow(0, B, pad).fill_(1);
    if (s.long_mask.defined()) s.long_mask.narrow(1, B, pad).fill_(false);
  }
  if (!capture_) {
    // Eager over the buffers: the key splits sized for this step's longest context.
    PagedStep eager = s;
    eager.decode.max_context_len = step.decode.max_context_len;
    return run_paged_step(model_, cache_, eager).narrow(0, 0, B);
  }
#ifdef ALIGN_WITH_CUDA
  if (!b.graph) {
    const auto device = cache_.k.front().device();
    const c10::cuda::CUDAGuard guard(device);
    // Capture runs on a side stream, after everything queued so far. The warm-up run first does
    // any lazy initialisation (library handles, workspaces) outside the capture; it writes the
    // same keys and values the replay writes.
    c10::cuda::device_synchronize();
    const c10::cuda::CUDAStream stream = c10::cuda::getStreamFromPool(false, device.index());
    {
      const c10::cuda::CUDAStreamGuard on_stream(stream);
      run_paged_step(model_, cache_, s);
      stream.synchronize();
      b.graph = std::make_unique<at::cuda::CUDAGraph>();
      b.graph->capture_begin();
      b.logits = run_paged_step(model_, cache_, s);
      b.graph->capture_end();
    }
    stream.synchronize();
    ++captured_;
  }
  b.graph->replay();
  return b.logits.narrow(0, 0, B);
#else
  throw Error("DecodeGraphs::run: capture in a build without CUDA");
#endif
}

}  // namespace align
