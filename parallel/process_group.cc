#include "parallel/process_group.h"

#include <map>

namespace align {
namespace {

class DonePending : public PendingCollective {
 public:
  void wait() override {}
};

// World size 1: collectives are identities; the store is a map.
class SingleProcessGroup : public ProcessGroup {
 public:
  SingleProcessGroup() : ProcessGroup(0, 1, torch::kCPU) {}
  bool single_process() const override { return true; }
  std::unique_ptr<PendingCollective> all_reduce_sum_async(torch::Tensor&) override {
    return std::make_unique<DonePending>();
  }
  std::unique_ptr<PendingCollective> reduce_sum_async(torch::Tensor&, int) override {
    return std::make_unique<DonePending>();
  }
  void broadcast(torch::Tensor&, int) override {}
  void barrier() override {}
  void store_set(const std::string& key, const std::string& value) override { store_[key] = value; }
  std::string store_get(const std::string& key) override {
    const auto it = store_.find(key);
    if (it == store_.end()) throw DistError("store key " + key + " was never set (single process)");
    return it->second;
  }
  bool store_check(const std::string& key) override { return store_.count(key) > 0; }

 private:
  std::map<std::string, std::string> store_;
};

}  // namespace

std::shared_ptr<ProcessGroup> make_c10d_process_group(const LaunchEnv& env,
                                                      const torch::Device& device,
                                                      const ProcessGroupOptions& options);

std::shared_ptr<ProcessGroup> ProcessGroup::single() {
  return std::make_shared<SingleProcessGroup>();
}

std::shared_ptr<ProcessGroup> ProcessGroup::create(const LaunchEnv& env,
                                                   const torch::Device& device,
                                                   const ProcessGroupOptions& options) {
  if (!env.distributed() && !(options.backend_for_one_rank && !env.master_addr.empty())) {
    return single();
  }
  return make_c10d_process_group(env, device, options);
}

void ProcessGroup::all_reduce_sum(torch::Tensor& t) {
  all_reduce_sum_async(t)->wait();
}

}  // namespace align
