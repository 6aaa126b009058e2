// The ranks of a data-parallel job and the collectives between them: Gloo on CPU, NCCL on CUDA,
// both through LibTorch's c10d, with the rendezvous on c10d's TCPStore (rank 0 serves it, or
// torchrun's agent does). A single-process job (no launcher variables) has world size 1, no store
// and no backend: every collective returns its input unchanged.
//
// Every collective has a timeout (ProcessGroupOptions::timeout). A rank that fails or is killed
// makes the others' next collective throw DistError (the peer closes its sockets, or the timeout
// expires) instead of hanging; the command line prints it and exits non-zero.
//
// Collectives must be called by every rank in the same order with tensors of the same shapes.
#pragma once

#include <torch/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "common/error.h"
#include "parallel/launch_env.h"

namespace align {

// A collective or the rendezvous failed (a rank died, a timeout expired, the store is unreachable).
class DistError : public Error {
 public:
  explicit DistError(const std::string& message) : Error(message) {}
};

struct ProcessGroupOptions {
  std::chrono::milliseconds timeout{std::chrono::minutes(30)};  // per collective and store wait
  // Join through the store and a real backend even as the only rank (needs MASTER_ADDR and
  // MASTER_PORT): runs the NCCL/Gloo code path on one device, for tests.
  bool backend_for_one_rank = false;
};

// An asynchronous collective in flight; wait() returns when its output is ready.
class PendingCollective {
 public:
  virtual ~PendingCollective() = default;
  virtual void wait() = 0;
};

class ProcessGroup {
 public:
  // Joins the job described by `env` (rendezvous, then a Gloo or NCCL backend for `device`; on
  // CUDA the process's current device becomes cuda:local_rank). World size 1: no rendezvous.
  static std::shared_ptr<ProcessGroup> create(const LaunchEnv& env, const torch::Device& device,
                                              const ProcessGroupOptions& options = {});
  // A single-process group (rank 0 of 1).
  static std::shared_ptr<ProcessGroup> single();

  virtual ~ProcessGroup() = default;
  int rank() const { return rank_; }
  int world_size() const { return world_size_; }
  bool is_main() const { return rank_ == 0; }
  // No backend at all (ProcessGroup::single()): collectives are identities.
  virtual bool single_process() const { return false; }
  // Where collective tensors live: CPU for Gloo, the rank's GPU for NCCL.
  const torch::Device& device() const { return device_; }

  // Sums `t` over ranks, in place (every rank gets the sum).
  void all_reduce_sum(torch::Tensor& t);
  virtual std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor& t) = 0;
  // Sums `t` over ranks into root's `t` (the others' `t` is left unspecified).
  virtual std::unique_ptr<PendingCollective> reduce_sum_async(torch::Tensor& t, int root) = 0;
  // Copies root's `t` into every rank's `t`.
  virtual void broadcast(torch::Tensor& t, int root) = 0;
  virtual void barrier() = 0;

  // A key-value store shared by the ranks (the rendezvous store). get() waits for the key up to
  // the timeout; check() does not wait.
  virtual void store_set(const std::string& key, const std::string& value) = 0;
  virtual std::string store_get(const std::string& key) = 0;
  virtual bool store_check(const std::string& key) = 0;

 protected:
  ProcessGroup(int rank, int world_size, torch::Device device)
      : rank_(rank), world_size_(world_size), device_(device) {}

 private:
  int rank_;
  int world_size_;
  torch::Device device_;
};

}  // namespace align
