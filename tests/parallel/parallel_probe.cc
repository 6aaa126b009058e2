// One rank of the process-group tests (tests/parallel/process_group_test.cc starts 2 or 3 of them):
// joins the job from the launcher's variables, checks every collective and the store against
// values derived here, then checks GradSync: a small network's gradient over a global batch of
// micro-batches, split over the ranks and summed by buckets during backward, must equal the
// gradient this process computes alone over the whole batch. Prints "probe ok" and exits 0, or
// prints what differed and exits 1.
//
// PROBE_DEVICE=cuda runs it over NCCL on cuda:LOCAL_RANK (tests/parallel/nccl_gpu_test.cc);
// PROBE_ONE_RANK=1 builds the real backend even for world size 1; PROBE_TIMEOUT_S sets the timeout.
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "parallel/data_parallel.h"
#include "parallel/grad_sync.h"
#include "parallel/launch_env.h"
#include "parallel/param_partition.h"
#include "parallel/process_group.h"

namespace {

int failures = 0;
torch::Device dev = torch::kCPU;  // where collective tensors live (the group's device)

void expect_close(const torch::Tensor& got, const torch::Tensor& want, const std::string& what,
                  double tol = 0) {
  const double diff =
      (got.cpu().to(torch::kFloat64) - want.cpu().to(torch::kFloat64)).abs().max().item<double>();
  if (diff > tol) {
    std::printf("FAIL %s: max abs diff %g (tolerance %g)\n", what.c_str(), diff, tol);
    ++failures;
  }
}

// Two-layer network; parameters seeded identically on every rank.
std::vector<torch::Tensor> make_params() {
  torch::manual_seed(7);
  std::vector<torch::Tensor> p = {torch::randn({16, 8}), torch::randn({16}), torch::randn({4, 16}),
                                  torch::randn({4}), torch::randn({3, 4})};
  for (auto& t : p)
    t = t.to(dev).requires_grad_(true);
  return p;
}

// Micro-batch i's objective, normalised by the step's `count` micro-batches.
torch::Tensor micro_loss(const std::vector<torch::Tensor>& p, int64_t i, int64_t count) {
  torch::manual_seed(1000 + i);
  const torch::Tensor x = torch::randn({5, 8}).to(dev);
  const torch::Tensor h = torch::tanh(torch::nn::functional::linear(x, p[0], p[1]));
  const torch::Tensor y = torch::nn::functional::linear(
      torch::relu(torch::nn::functional::linear(h, p[2], p[3])), p[4]);
  return y.pow(2).sum() / static_cast<double>(count);
}

// `sharded`: gradients reduced to the owners of parallel/param_partition.h instead of all-reduced.
void check_grad_sync(const std::shared_ptr<align::ProcessGroup>& group, int64_t count,
                     bool sharded) {
  const std::string tag = std::string(sharded ? "reduce" : "all-reduce") + " grad_sync(" +
                          std::to_string(count) + " micro-batches)";
  std::vector<torch::Tensor> reference = make_params();
  for (int64_t i = 0; i < count; ++i)
    micro_loss(reference, i, count).backward();

  std::vector<torch::Tensor> params = make_params();
  std::vector<int> owners;
  if (sharded) {
    std::vector<int64_t> numels;
    for (const auto& t : params)
      numels.push_back(t.numel());
    owners = align::partition_contiguous(numels, group->world_size());
  }
  align::GradSync sync(group, params, /*bucket_bytes=*/300, owners);
  if (sync.num_buckets() < 3) {
    std::printf("FAIL %s: expected several buckets, got %lld\n", tag.c_str(),
                static_cast<long long>(sync.num_buckets()));
    ++failures;
  }
  for (int step = 0; step < 2; ++step) {  // twice: hooks re-arm cleanly
    for (auto& t : params)
      t.mutable_grad() = torch::Tensor();
    const std::vector<int64_t> mine = align::local_micro_batches(*group, count);
    if (sharded) {
      // Every rank runs the same number of rounds, each reduced; missing micro-batches are zeros.
      const int64_t rounds = (count + group->world_size() - 1) / group->world_size();
      for (int64_t j = 0; j < rounds; ++j) {
        if (j < static_cast<int64_t>(mine.size())) {
          sync.arm();
          micro_loss(params, mine[static_cast<size_t>(j)], count).backward();
          for (size_t k = 0; k < params.size(); ++k) {
            if (params[k].grad().defined()) {
              std::printf("FAIL %s: gradient %zu kept after its bucket was sent\n", tag.c_str(), k);
              ++failures;
            }
          }
        }
        sync.round_done();
      }
    } else {
      for (size_t j = 0; j < mine.size(); ++j) {
        if (j + 1 == mine.size()) sync.arm();
        micro_loss(params, mine[j], count).backward();
      }
    }
    sync.finish();
    if (!mine.empty() && sync.started_during_backward() == 0) {
      std::printf("FAIL %s: no bucket started during backward\n", tag.c_str());
      ++failures;
    }
    for (size_t k = 0; k < params.size(); ++k) {
      const std::string what =
          tag + " step " + std::to_string(step) + " param " + std::to_string(k);
      if (sharded && owners[k] != group->rank()) {
        if (params[k].grad().defined()) {
          std::printf("FAIL %s: a gradient another rank owns was kept\n", what.c_str());
          ++failures;
        }
        continue;
      }
      expect_close(params[k].grad(), reference[k].grad(), what, 1e-5);
    }
  }
}

}  // namespace

int main() {
  try {
    const align::LaunchEnv env = align::read_launch_env();
    align::ProcessGroupOptions options;
    const char* timeout = std::getenv("PROBE_TIMEOUT_S");
    options.timeout = std::chrono::seconds(timeout ? std::atoi(timeout) : 60);
    options.backend_for_one_rank = std::getenv("PROBE_ONE_RANK") != nullptr;
    const char* device_name = std::getenv("PROBE_DEVICE");
    const torch::Device device(device_name ? device_name : "cpu");
    const auto group = align::ProcessGroup::create(env, device, options);
    dev = group->device();
    const int rank = group->rank(), world = group->world_size();
    const double w = world;

    torch::Tensor t = torch::full({4}, rank + 1.0).to(dev);
    group->all_reduce_sum(t);
    expect_close(t, torch::full({4}, w * (w + 1) / 2), "all_reduce_sum");

    torch::Tensor r = torch::full({3}, 2.0 * rank + 1).to(dev);  // sum over ranks: world^2
    group->reduce_sum_async(r, world - 1)->wait();
    if (rank == world - 1) expect_close(r, torch::full({3}, w * w), "reduce_sum to the last rank");

    torch::Tensor b = torch::full({2}, static_cast<float>(rank * 5)).to(dev);
    group->broadcast(b, world - 1);
    expect_close(b, torch::full({2}, static_cast<float>((world - 1) * 5)), "broadcast");

    group->store_set("probe/" + std::to_string(rank), "hello from " + std::to_string(rank));
    const int peer = (rank + 1) % world;
    const std::string got = group->store_get("probe/" + std::to_string(peer));
    if (got != "hello from " + std::to_string(peer)) {
      std::printf("FAIL store: got \"%s\"\n", got.c_str());
      ++failures;
    }

    for (bool sharded : {false, true}) {
      check_grad_sync(group, 5, sharded);                         // uneven split over 2 or 3 ranks
      if (world > 1) check_grad_sync(group, world - 1, sharded);  // one rank has no micro-batch
    }
    group->barrier();
  } catch (const std::exception& e) {
    std::printf("FAIL exception: %s\n", e.what());
    return 1;
  }
  if (failures > 0) return 1;
  std::printf("probe ok\n");
  return 0;
}
