// Data-parallel gradient averaging overlapped with the backward pass, as torch DDP's Reducer does.
//
// Two modes: all-reduce (every rank gets every summed gradient: replicated optimizer), or, with
// `owners` (dist/param_partition.h), reduce each bucket to the rank that owns its parameters
// (ZeRO stage 2: a reduce-scatter whose shards are whole parameters); after finish() a rank keeps
// the gradients of its own parameters only and the others' .grad are released (undefined).
//
// The trainable parameters (leaf tensors with requires_grad) are grouped into buckets of about
// `bucket_bytes` (one dtype and device per bucket) in reverse registration order, roughly the order
// backward produces their gradients. A post-hook on each parameter's gradient accumulator marks the
// parameter ready once its .grad is final; when every parameter of a bucket is ready, the bucket's
// gradients are copied into one flat buffer and its all-reduce (sum) starts while backward goes on.
// Buckets start in index order on every rank (a ready bucket waits for the lower ones), so the
// ranks' collectives always match.
//
// Use, per optimizer step (gradients accumulate over a rank's micro-batches; only the last
// backward overlaps communication):
//   sync.arm();              // before the rank's last backward of the step (skip if it has none)
//   loss.backward();
//   sync.finish();           // starts buckets not yet started, waits, writes sums into .grad
// The objective must already be normalised by the global step's size, so the sum over ranks is
// the gradient of the global batch. A parameter without a gradient on a rank counts as zeros;
// after finish() every parameter has a .grad. With world size 1 nothing is hooked and finish()
// leaves the gradients as they are.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "dist/process_group.h"

namespace torch::autograd {
struct Node;
}

namespace align {

class GradSync {
 public:
  // `owners`: empty for all-reduce, else the owning rank of each parameter.
  GradSync(std::shared_ptr<ProcessGroup> group, std::vector<torch::Tensor> params,
           int64_t bucket_bytes = 25 << 20, std::vector<int> owners = {});
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;
  ~GradSync();

  void arm();
  void finish();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets whose all-reduce started during the last armed backward (before finish()).
  int64_t started_during_backward() const { return started_during_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int owner = -1;              // the rank the bucket is reduced to; -1: all-reduce
    int64_t pending = 0;         // parameters not yet ready in this backward
    torch::Tensor flat;          // [sum of numel] in the bucket's dtype
    std::unique_ptr<PendingCollective> work;
  };
  void mark_ready(size_t param);
  void start_ready_buckets();  // in index order, as far as the lower buckets allow
  void start(Bucket& b);

  std::shared_ptr<ProcessGroup> group_;
  std::vector<torch::Tensor> params_;
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<Bucket> buckets_;
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // keep the hooks alive
  std::mutex mutex_;  // hooks may run on autograd's device threads
  bool armed_ = false;
  size_t next_bucket_ = 0;  // the lowest bucket not yet started
  int64_t started_during_backward_ = 0;
};

}  // namespace align
