// The optimizer side of a (possibly) data-parallel training step, shared by the SFT and DPO
// recipes: gradient synchronisation overlapped with backward (parallel/grad_sync.h), the gradient
// norm and clipping over all ranks, AdamW, and with ZeRO stage 2 the sharding of AdamW's state.
//
//   zero_stage 0: every rank keeps AdamW state for every parameter; gradients are all-reduced;
//                 every rank runs the same update.
//   zero_stage 2: parameters are split into contiguous runs, one per rank
//                 (parallel/param_partition.h); every micro-batch's gradient buckets are reduced to
//                 their owner during backward and released, so a rank holds only its own summed
//                 gradients; the owner alone keeps that parameter's fp32 master and moments and
//                 updates it; the owners then broadcast the new weights bucket by bucket.
// Both give the single-process result up to floating-point summation order.
//
// Per step:
//   opt.zero_grad();
//   const auto plan = opt.local_plan(grad_accum);
//   for (j, i) in plan: { if i < 0 or nothing to learn: opt.skip_backward(); continue;
//                         opt.before_backward(j is last); loss(i).backward(); opt.after_backward();
//                         }
//   norm = opt.sync_and_clip(max_norm); opt.step(lr);
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "parallel/grad_sync.h"
#include "parallel/process_group.h"
#include "train/adamw.h"
#include "train/named_tensors.h"
#include "train/train_checkpoint.h"

namespace align {

class ParallelOptimizer {
 public:
  ParallelOptimizer(std::shared_ptr<ProcessGroup> group, const NamedTensors& trainable,
                    const AdamWOptions& options, int64_t zero_stage,
                    int64_t bucket_bytes = 25 << 20);

  void zero_grad();
  // The step's micro-batch indices this rank runs (parallel/data_parallel.h), in order; with
  // sharded state every rank gets the same number of entries (rounds), -1 where it has no
  // micro-batch.
  std::vector<int64_t> local_plan(int64_t grad_accum) const;
  void before_backward(bool last);
  void after_backward();
  void skip_backward();
  // Finishes the gradient sum, then returns the global gradient norm (before clipping) and, when
  // max_norm > 0, scales the gradients so it is at most max_norm (torch's clip_grad_norm_).
  double sync_and_clip(double max_norm);
  // The AdamW update of this rank's parameters, then (stage 2) the weights from their owners.
  void step(double lr);

  bool sharded() const { return sharded_; }
  // The parameters whose state this rank keeps (all of them unless sharded).
  const NamedTensors& owned() const { return owned_; }
  // This rank's optimizer state (AdamW::state_tensors() of the owned parameters).
  NamedTensors state_tensors() const { return adamw_.state_tensors(); }
  // Restores the owned parameters' state from a checkpoint written with any stage and any number
  // of ranks (its state is keyed by parameter name).
  void load_state(const LoadedTrainCheckpoint& checkpoint);
  // --resume: opens the newest checkpoint in `output_dir` (InputError when there is none or its
  // weights do not match the trainable ones by name and shape), copies its weights into the
  // trainable tensors, loads this rank's optimizer state and restores the RNG states. The caller
  // restores its data position from the returned checkpoint's state.
  LoadedTrainCheckpoint resume_from_latest(const std::string& output_dir);

 private:
  std::shared_ptr<ProcessGroup> group_;
  bool sharded_;
  NamedTensors trainable_;
  NamedTensors owned_;
  std::vector<int> owners_;  // per trainable parameter (all 0..world-1 when sharded)
  GradSync sync_;
  AdamW adamw_;
  int64_t bucket_bytes_;
};

}  // namespace align
