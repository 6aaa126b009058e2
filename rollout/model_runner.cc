#include "rollout/model_runner.h"

#include <ATen/ATen.h>

#include <chrono>

#include "rollout/paged_step.h"

namespace align {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

ModelRunner::ModelRunner(const Phi3Model& model, PagedKvCache& cache, Options options)
    : model_(model), cache_(cache), cascade_decode_(options.cascade_decode) {
  if (options.decode_buckets || options.cuda_graphs) {
    graphs_ = std::make_unique<DecodeGraphs>(model, cache, options.cuda_graphs);
  }
}

torch::Tensor ModelRunner::run(const std::vector<PagedRow>& rows) {
  const PagedStep step = plan_paged_step(model_, cache_, rows, cascade_decode_);
  const auto start = Clock::now();
  const bool bucketed = graphs_ && graphs_->serves(step);
  bucketed_steps_ += bucketed ? 1 : 0;
  torch::Tensor logits = bucketed ? graphs_->run(step) : run_paged_step(model_, cache_, step);
  compute_seconds_ += seconds_since(start);
  return logits;
}

ModelRunner::Draws ModelRunner::sample(const torch::Tensor& logits, const SampleRows& rows) {
  const auto start = Clock::now();
  const auto index = at::tensor(rows.logit_rows, at::kLong).to(logits.device());
  const SampleResult drawn = align::sample(logits.index_select(0, index), rows.params, rows.steps);
  const auto tokens = drawn.tokens.to(at::kCPU).contiguous();
  const auto logprobs = drawn.logprobs.to(at::kCPU, at::kFloat).contiguous();
  compute_seconds_ += seconds_since(start);
  Draws out;
  out.tokens.assign(tokens.data_ptr<int64_t>(), tokens.data_ptr<int64_t>() + tokens.numel());
  out.logprobs.assign(logprobs.data_ptr<float>(), logprobs.data_ptr<float>() + logprobs.numel());
  return out;
}

}  // namespace align
