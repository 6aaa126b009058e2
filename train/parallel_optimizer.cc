#include "train/parallel_optimizer.h"

#include <torch/torch.h>

#include <cmath>

#include "common/error.h"
#include "parallel/data_parallel.h"
#include "parallel/param_partition.h"
#include "train/grad_clip.h"
#include "train/rng_state.h"

namespace align {
namespace {

std::vector<torch::Tensor> tensors_of(const NamedTensors& named) {
  std::vector<torch::Tensor> out;
  for (const auto& [name, t] : named)
    out.push_back(t);
  return out;
}

std::vector<int> owners_of(const NamedTensors& trainable, int world, bool sharded) {
  if (!sharded) return {};
  std::vector<int64_t> numels;
  for (const auto& [name, t] : trainable)
    numels.push_back(t.numel());
  return partition_contiguous(numels, world);
}

NamedTensors owned_by(const NamedTensors& trainable, const std::vector<int>& owners, int rank) {
  if (owners.empty()) return trainable;
  NamedTensors mine;
  for (size_t i = 0; i < trainable.size(); ++i)
    if (owners[i] == rank) mine.push_back(trainable[i]);
  return mine;
}

}  // namespace

ParallelOptimizer::ParallelOptimizer(std::shared_ptr<ProcessGroup> group,
                                     const NamedTensors& trainable, const AdamWOptions& options,
                                     int64_t zero_stage, int64_t bucket_bytes)
    : group_(std::move(group)),
      sharded_(zero_stage == 2 && group_->world_size() > 1),
      trainable_(trainable),
      owners_(owners_of(trainable, group_->world_size(), sharded_)),
      sync_(group_, tensors_of(trainable), bucket_bytes, owners_),
      adamw_(owned_by(trainable, owners_, group_->rank()), options),
      bucket_bytes_(bucket_bytes) {
  owned_ = adamw_.params();
}

std::vector<int64_t> ParallelOptimizer::local_plan(int64_t grad_accum) const {
  std::vector<int64_t> plan = local_micro_batches(*group_, grad_accum);
  if (sharded_) {
    const int64_t world = group_->world_size();
    plan.resize(static_cast<size_t>((grad_accum + world - 1) / world), -1);
  }
  return plan;
}

void ParallelOptimizer::before_backward(bool last) {
  if (sharded_ || last) sync_.arm();
}

void ParallelOptimizer::after_backward() {
  if (sharded_) sync_.round_done();
}

void ParallelOptimizer::skip_backward() {
  if (sharded_) sync_.round_done();
}

void ParallelOptimizer::zero_grad() {
  for (auto& [name, p] : trainable_)
    p.mutable_grad() = torch::Tensor();
}

double ParallelOptimizer::sync_and_clip(double max_norm) {
  sync_.finish();
  if (!sharded_) return clip_grad_norm(trainable_, max_norm).item<double>();
  // The norm over every rank's own gradients: sums of squares on the device, summed over ranks,
  // read back once.
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> squares;
  for (const auto& [name, p] : owned_) {
    if (p.grad().defined()) {
      squares.push_back(torch::linalg_vector_norm(p.grad(), 2, c10::nullopt, false, torch::kFloat64)
                            .pow(2)
                            .to(group_->device()));
    }
  }
  torch::Tensor sum =
      squares.empty() ? torch::zeros({1}, torch::dtype(torch::kFloat64).device(group_->device()))
                      : torch::stack(squares).sum().reshape({1});
  group_->all_reduce_sum(sum);
  const double total = std::sqrt(sum.item<double>());
  if (max_norm > 0) {
    const double coef = std::min(1.0, max_norm / (total + 1e-6));
    for (auto& [name, p] : owned_)
      if (p.grad().defined()) p.mutable_grad().mul_(coef);
  }
  return total;
}

void ParallelOptimizer::step(double lr) {
  adamw_.step(lr);
  if (!sharded_) return;
  // Every parameter from its owner, in runs of one owner up to bucket_bytes_ each.
  torch::NoGradGuard no_grad;
  size_t i = 0;
  while (i < trainable_.size()) {
    size_t end = i;
    int64_t bytes = 0;
    while (end < trainable_.size() && owners_[end] == owners_[i] &&
           trainable_[end].second.scalar_type() == trainable_[i].second.scalar_type() &&
           (end == i ||
            bytes + static_cast<int64_t>(trainable_[end].second.nbytes()) <= bucket_bytes_)) {
      bytes += static_cast<int64_t>(trainable_[end].second.nbytes());
      ++end;
    }
    const bool mine = owners_[i] == group_->rank();
    int64_t numel = 0;
    std::vector<torch::Tensor> pieces;
    for (size_t k = i; k < end; ++k) {
      numel += trainable_[k].second.numel();
      if (mine) pieces.push_back(trainable_[k].second.detach().reshape({-1}));
    }
    torch::Tensor flat =
        mine ? torch::cat(pieces) : torch::empty({numel}, trainable_[i].second.options());
    group_->broadcast(flat, owners_[i]);
    int64_t offset = 0;
    for (size_t k = i; k < end; ++k) {
      torch::Tensor& p = trainable_[k].second;
      if (!mine) p.copy_(flat.narrow(0, offset, p.numel()).view_as(p));
      offset += p.numel();
    }
    i = end;
  }
}

void ParallelOptimizer::load_state(const LoadedTrainCheckpoint& checkpoint) {
  std::set<std::string> names;
  for (const auto& [name, p] : owned_)
    names.insert(name);
  adamw_.load_state(optimizer_state_for(checkpoint, names), checkpoint.dir);
}

LoadedTrainCheckpoint ParallelOptimizer::resume_from_latest(const std::string& output_dir) {
  const auto latest = find_latest_checkpoint(output_dir);
  if (!latest) throw InputError("--resume: no checkpoint in " + checkpoints_dir(output_dir));
  LoadedTrainCheckpoint ckpt = load_train_checkpoint(*latest);
  TensorShapes shapes;
  for (const auto& [name, w] : trainable_)
    shapes.emplace_back(name, w.sizes().vec());
  ckpt.weights.check(shapes);
  {
    torch::NoGradGuard no_grad;
    for (auto& [name, w] : trainable_)
      w.copy_(ckpt.weights.get(name, w.scalar_type(), w.device()));
  }
  load_state(ckpt);
  restore_rng_state(ckpt.state.rng, ckpt.state_path);
  return ckpt;
}

}  // namespace align
