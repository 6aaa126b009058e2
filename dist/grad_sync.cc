#include "dist/grad_sync.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace align {

GradSync::GradSync(std::shared_ptr<ProcessGroup> group, std::vector<torch::Tensor> params,
                   int64_t bucket_bytes, std::vector<int> owners)
    : group_(std::move(group)) {
  if (group_->world_size() == 1) return;
  params_ = std::move(params);
  bucket_of_.resize(params_.size());
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const torch::Tensor& p = params_[k];
    const int owner = owners.empty() ? -1 : owners[k];
    const bool fits = !buckets_.empty() && buckets_.back().owner == owner &&
                      bytes + p.nbytes() <= static_cast<size_t>(bucket_bytes) &&
                      params_[buckets_.back().params.front()].scalar_type() == p.scalar_type() &&
                      params_[buckets_.back().params.front()].device() == p.device();
    if (!fits) {
      buckets_.emplace_back();
      buckets_.back().owner = owner;
      bytes = 0;
    }
    buckets_.back().params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += static_cast<int64_t>(p.nbytes());
  }
  for (size_t k = 0; k < params_.size(); ++k) {
    std::shared_ptr<torch::autograd::Node> acc =
        torch::autograd::impl::grad_accumulator(params_[k]);
    acc->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [this, k](const torch::autograd::variable_list& outputs,
                  const torch::autograd::variable_list&) {
          mark_ready(k);
          return outputs;
        }));
    accumulators_.push_back(std::move(acc));
  }
}

GradSync::~GradSync() = default;

void GradSync::arm() {
  if (params_.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  for (Bucket& b : buckets_) {
    b.pending = static_cast<int64_t>(b.params.size());
    b.work.reset();
  }
  next_bucket_ = 0;
  started_during_backward_ = 0;
  armed_ = true;
}

void GradSync::mark_ready(size_t param) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_) return;
  --buckets_[bucket_of_[param]].pending;
  start_ready_buckets();
}

void GradSync::start_ready_buckets() {
  while (next_bucket_ < buckets_.size() && buckets_[next_bucket_].pending == 0) {
    start(buckets_[next_bucket_++]);
    ++started_during_backward_;
  }
}

void GradSync::start(Bucket& b) {
  std::vector<torch::Tensor> grads;
  for (size_t k : b.params) {
    const torch::Tensor& p = params_[k];
    const torch::Tensor& g = p.grad();
    grads.push_back(g.defined() ? g.detach().reshape({-1})
                                : torch::zeros({p.numel()}, p.options()));
  }
  b.flat = torch::cat(grads);
  b.work = b.owner < 0 ? group_->all_reduce_sum_async(b.flat)
                       : group_->reduce_sum_async(b.flat, b.owner);
}

void GradSync::finish() {
  if (params_.empty()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const bool was_armed = armed_;
    armed_ = false;
    if (!was_armed) {
      // This rank had no backward this step: its contribution is all zeros.
      for (Bucket& b : buckets_)
        b.work.reset();
      next_bucket_ = 0;
    }
    while (next_bucket_ < buckets_.size())
      start(buckets_[next_bucket_++]);
  }
  torch::NoGradGuard no_grad;
  for (Bucket& b : buckets_) {
    b.work->wait();
    const bool mine = b.owner < 0 || b.owner == group_->rank();
    int64_t offset = 0;
    for (size_t k : b.params) {
      torch::Tensor& p = params_[k];
      if (!mine) {
        p.mutable_grad() = torch::Tensor();  // another rank owns it and holds the sum
        continue;
      }
      const torch::Tensor sum = b.flat.narrow(0, offset, p.numel()).view_as(p);
      if (p.grad().defined()) {
        p.mutable_grad().copy_(sum);
      } else {
        p.mutable_grad() = sum.clone();
      }
      offset += p.numel();
    }
    b.work.reset();
    b.flat = torch::Tensor();
  }
}

}  // namespace align
