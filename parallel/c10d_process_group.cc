// ProcessGroup over LibTorch's c10d: TCPStore rendezvous, ProcessGroupGloo (CPU) and
// ProcessGroupNCCL (CUDA). The only file that includes c10d's headers: ProcessGroupGloo.hpp needs
// Gloo's headers, which the torch wheel does not ship; the build takes them from Debian's
// libgloo-dev (headers only: the Gloo code itself is the copy inside libtorch_cpu).
#include <c10/util/Exception.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef ALIGN_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef ALIGN_WITH_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>

#include "parallel/process_group.h"

namespace align {
namespace {

std::string rank_prefix(int rank) {
  return "rank " + std::to_string(rank) + ": ";
}

// Runs `fn`, turning c10d's exceptions into DistError with the rank and what was being done.
template <typename Fn>
auto guarded(int rank, const std::string& what, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const c10::Error& e) {
    throw DistError(rank_prefix(rank) + what + " failed: " + e.what_without_backtrace() +
                    "\n(another rank probably failed or was killed: see its log)");
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const Error*>(&e) != nullptr) throw;
    throw DistError(rank_prefix(rank) + what + " failed: " + e.what() +
                    "\n(another rank probably failed or was killed: see its log)");
  }
}

class C10dPending : public PendingCollective {
 public:
  C10dPending(c10::intrusive_ptr<c10d::Work> work, int rank, std::string what)
      : work_(std::move(work)), rank_(rank), what_(std::move(what)) {}
  void wait() override {
    guarded(rank_, what_, [&] { return work_->wait(); });
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  int rank_;
  std::string what_;
};

class C10dProcessGroup : public ProcessGroup {
 public:
  C10dProcessGroup(int rank, int world, torch::Device device, c10::intrusive_ptr<c10d::Store> store,
                   c10::intrusive_ptr<c10d::Backend> backend, std::chrono::milliseconds timeout)
      : ProcessGroup(rank, world, device),
        store_(std::move(store)),
        backend_(std::move(backend)),
        timeout_(timeout) {}

  std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor& t) override {
    std::vector<at::Tensor> tensors{t};
    auto work = guarded(rank(), "all_reduce", [&] { return backend_->allreduce(tensors); });
    return std::make_unique<C10dPending>(std::move(work), rank(), "all_reduce");
  }
  std::unique_ptr<PendingCollective> reduce_sum_async(torch::Tensor& t, int root) override {
    std::vector<at::Tensor> tensors{t};
    c10d::ReduceOptions opts;
    opts.rootRank = root;
    auto work = guarded(rank(), "reduce", [&] { return backend_->reduce(tensors, opts); });
    return std::make_unique<C10dPending>(std::move(work), rank(), "reduce");
  }
  void broadcast(torch::Tensor& t, int root) override {
    std::vector<at::Tensor> tensors{t};
    c10d::BroadcastOptions opts;
    opts.rootRank = root;
    guarded(rank(), "broadcast", [&] { return backend_->broadcast(tensors, opts)->wait(); });
  }
  void barrier() override {
    guarded(rank(), "barrier", [&] { return backend_->barrier()->wait(); });
  }
  void store_set(const std::string& key, const std::string& value) override {
    guarded(rank(), "store set " + key, [&] {
      store_->set(key, std::vector<uint8_t>(value.begin(), value.end()));
      return 0;
    });
  }
  std::string store_get(const std::string& key) override {
    return guarded(rank(), "store get " + key, [&] {
      store_->wait({key}, timeout_);
      const std::vector<uint8_t> v = store_->get(key);
      return std::string(v.begin(), v.end());
    });
  }
  bool store_check(const std::string& key) override {
    return guarded(rank(), "store check " + key, [&] { return store_->check({key}); });
  }

 private:
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  std::chrono::milliseconds timeout_;
};

c10::intrusive_ptr<c10d::Backend> make_gloo(const c10::intrusive_ptr<c10d::Store>& store,
                                            const LaunchEnv& env,
                                            std::chrono::milliseconds timeout) {
#ifndef ALIGN_WITH_GLOO
  throw InputError(
      "this align was built without Gloo's headers (Debian libgloo-dev): multi-process CPU runs "
      "need them; run scripts/setup.sh and rebuild");
#else
  auto opts = c10d::ProcessGroupGloo::Options::create();
  opts->timeout = timeout;
  const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
  opts->devices.push_back(ifname != nullptr && *ifname != '\0'
                              ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
                              : c10d::ProcessGroupGloo::createDefaultDevice());
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, env.rank, env.world_size, opts);
#endif
}

}  // namespace

std::shared_ptr<ProcessGroup> make_c10d_process_group(const LaunchEnv& env,
                                                      const torch::Device& device,
                                                      const ProcessGroupOptions& options) {
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  return guarded(env.rank, "rendezvous at " + where, [&]() -> std::shared_ptr<ProcessGroup> {
    c10d::TCPStoreOptions store_opts;
    store_opts.port = static_cast<uint16_t>(env.master_port);
    store_opts.isServer = env.rank == 0 && !env.agent_store;
    store_opts.numWorkers = env.world_size;
    store_opts.waitWorkers = false;
    store_opts.timeout = options.timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, store_opts);
    // Keys of this attempt only: a torchrun restart reuses the agent's store.
    auto store =
        c10::make_intrusive<c10d::PrefixStore>("align/" + std::to_string(env.restart_count), tcp);
    c10::intrusive_ptr<c10d::Backend> backend;
    torch::Device where_tensors = torch::kCPU;
    if (device.is_cuda()) {
      where_tensors = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
#ifdef ALIGN_WITH_NCCL
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
      auto opts = c10d::ProcessGroupNCCL::Options::create();
      opts->timeout = options.timeout;
      backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env.rank, env.world_size, opts);
#else
      throw InputError("this align was built without NCCL: multi-process CUDA runs need it");
#endif
    } else {
      backend = make_gloo(store, env, options.timeout);
    }
    return std::make_shared<C10dProcessGroup>(env.rank, env.world_size, where_tensors, store,
                                              backend, options.timeout);
  });
}

}  // namespace align
