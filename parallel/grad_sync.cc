#include "parallel/grad_sync.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>

namespace align {
namespace {

constexpr size_t kMaxWaiting = 2;  // reduce mode: buckets in flight before the oldest is awaited

}  // namespace

GradSync::GradSync(std::shared_ptr<ProcessGroup> group, std::vector<torch::Tensor> params,
                   int64_t bucket_bytes, std::vector<int> owners)
    : group_(std::move(group)) {
  if (group_->single_process()) return;
  params_ = std::move(params);
  owners_ = std::move(owners);
  bucket_of_.resize(params_.size());
  sums_.resize(params_.size());
  int64_t bytes = 0;
  for (size_t k = params_.size(); k-- > 0;) {
    const torch::Tensor& p = params_[k];
    const int owner = owners_.empty() ? -1 : owners_[k];
    const bool fits = !buckets_.empty() && buckets_.back().owner == owner &&
                      bytes + static_cast<int64_t>(p.nbytes()) <= bucket_bytes &&
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
  for (Bucket& b : buckets_)
    b.pending = static_cast<int64_t>(b.params.size());
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
    start(next_bucket_++);
    ++started_during_backward_;
  }
}

void GradSync::start(size_t bucket) {
  const Bucket& b = buckets_[bucket];
  std::vector<torch::Tensor> grads;
  for (size_t k : b.params) {
    const torch::Tensor& p = params_[k];
    const torch::Tensor& g = p.grad();
    grads.push_back(g.defined() ? g.detach().reshape({-1})
                                : torch::zeros({p.numel()}, p.options()));
  }
  InFlight f{bucket, torch::cat(grads), nullptr};
  if (b.owner < 0) {
    f.work = group_->all_reduce_sum_async(f.flat);
  } else {
    f.work = group_->reduce_sum_async(f.flat, b.owner);
    for (size_t k : b.params)
      params_[k].mutable_grad() = torch::Tensor();  // copied: release it now
    if (in_flight_.size() >= kMaxWaiting) complete_oldest();
  }
  in_flight_.push_back(std::move(f));
}

void GradSync::complete_oldest() {
  InFlight f = std::move(in_flight_.front());
  in_flight_.pop_front();
  f.work->wait();
  const Bucket& b = buckets_[f.bucket];
  if (b.owner >= 0 && b.owner != group_->rank()) return;  // another rank holds the sum
  torch::NoGradGuard no_grad;
  int64_t offset = 0;
  for (size_t k : b.params) {
    const torch::Tensor& p = params_[k];
    const torch::Tensor sum = f.flat.narrow(0, offset, p.numel()).view_as(p);
    offset += p.numel();
    if (b.owner >= 0) {
      if (sums_[k].defined()) {
        sums_[k].add_(sum);
      } else {
        sums_[k] = sum.clone();
      }
    } else if (p.grad().defined()) {
      params_[k].mutable_grad().copy_(sum);
    } else {
      params_[k].mutable_grad() = sum.clone();
    }
  }
}

void GradSync::round_done() {
  if (params_.empty()) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (!armed_) next_bucket_ = 0;  // no backward this round: the whole round from zeros
  armed_ = false;
  while (next_bucket_ < buckets_.size())
    start(next_bucket_++);
  next_bucket_ = 0;
}

void GradSync::finish() {
  if (params_.empty()) return;
  if (reduces_to_owners()) {
    std::lock_guard<std::mutex> lock(mutex_);
    while (!in_flight_.empty())
      complete_oldest();
    for (size_t k = 0; k < params_.size(); ++k) {
      params_[k].mutable_grad() =
          owners_[k] == group_->rank() ? std::move(sums_[k]) : torch::Tensor();
      sums_[k] = torch::Tensor();
    }
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!armed_) next_bucket_ = 0;  // no backward this step: every bucket from .grad as it is
    armed_ = false;
    while (next_bucket_ < buckets_.size())
      start(next_bucket_++);
    while (!in_flight_.empty())
      complete_oldest();
  }
}

}  // namespace align
