// Data-parallel gradient sums overlapped with the backward pass, as torch DDP's Reducer does.
//
// The trainable parameters (leaf tensors with requires_grad) are grouped into buckets of about
// `bucket_bytes` (one dtype, device and owner per bucket) in reverse registration order, roughly
// the order backward produces their gradients. A post-hook on each parameter's gradient
// accumulator marks the parameter ready once its .grad is final for the backward; when every
// parameter of a bucket is ready, its gradients are copied into one flat buffer and the bucket's
// collective starts while backward goes on. Buckets start in index order on every rank (a ready
// bucket waits for the lower ones), so the ranks' collectives always match.
//
// Two modes:
//  - all-reduce (no `owners`): gradients accumulate in .grad over a rank's micro-batches and only
//    the last backward of the step is reduced; after finish() every rank has every summed .grad.
//      for each local micro-batch: { if last: sync.arm(); backward; }   sync.finish();
//  - reduce to owners (`owners`, parallel/param_partition.h; ZeRO stage 2: a reduce-scatter whose
//    shards are whole parameters): every backward is a round reduced to the parameters' owners,
//    and a bucket's .grad are released as soon as it is copied, so no rank ever holds more than
//    its own summed gradients, the buckets in flight (at most two waiting) and one backward's
//    worth of not-yet-bucketed gradients. Every rank must run the same number of rounds; a rank
//    without a micro-batch for a round calls round_done() without arm() and contributes zeros.
//      for each round: { sync.arm(); backward; sync.round_done(); }   sync.finish();
//    After finish() a rank has .grad for the parameters it owns only (the others are undefined).
//
// The objective must already be normalised by the global step's size, so the sum over ranks is
// the gradient of the global batch. A parameter without a gradient on a rank counts as zeros.
// In a single-process group nothing is hooked and every call leaves the gradients as they are; a
// one-rank group with a real backend runs the whole path.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <vector>

#include "parallel/process_group.h"

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

  bool reduces_to_owners() const { return !owners_.empty(); }
  void arm();
  void round_done();  // reduce-to-owners mode only
  void finish();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }
  // Buckets whose collective started during the last armed backward (before it returned).
  int64_t started_during_backward() const { return started_during_backward_; }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int owner = -1;              // the rank the bucket is reduced to; -1: all-reduce
    int64_t pending = 0;         // parameters not yet ready in this backward
  };
  struct InFlight {
    size_t bucket;
    torch::Tensor flat;  // [sum of numel] in the bucket's dtype
    std::unique_ptr<PendingCollective> work;
  };
  void mark_ready(size_t param);
  void start_ready_buckets();  // in index order, as far as the lower buckets allow
  void start(size_t bucket);
  void complete_oldest();  // waits for it; reduce mode: the owner adds it to its sums

  std::shared_ptr<ProcessGroup> group_;
  std::vector<torch::Tensor> params_;
  std::vector<int> owners_;        // per parameter; empty in all-reduce mode
  std::vector<size_t> bucket_of_;  // per parameter
  std::vector<Bucket> buckets_;
  std::deque<InFlight> in_flight_;
  std::vector<torch::Tensor> sums_;  // reduce mode: this rank's summed gradients, per parameter
  std::vector<std::shared_ptr<torch::autograd::Node>> accumulators_;  // keep the hooks alive
  std::mutex mutex_;  // hooks may run on autograd's device threads
  bool armed_ = false;
  size_t next_bucket_ = 0;  // the lowest bucket not yet started in this round
  int64_t started_during_backward_ = 0;
};

}  // namespace align
