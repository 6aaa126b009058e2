// The real multi-process path on GPUs: the probe of tests/parallel/parallel_probe.cc over NCCL, one
// rank (the backend built even for a single rank) and, with two or more GPUs, two ranks. Skips
// without a GPU or without NCCL in the build.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests/parallel/rank_launcher.h"
#include "tests/test_util.h"

namespace align {
namespace {

void run_probe_on_gpus(int world) {
  testing::TempDir dir;
  const std::string probe = std::string(ALIGN_BINARY_DIR) + "/tests/parallel_probe";
  const testing::JobResult job =
      testing::run_ranks("env PROBE_DEVICE=cuda PROBE_ONE_RANK=1 " + probe, world, dir.path());
  ASSERT_TRUE(job.all_ok()) << job.describe();
  for (const std::string& log : job.logs)
    EXPECT_NE(log.find("probe ok"), std::string::npos) << log;
}

TEST(NcclGpu, OneRankRunsTheRealPath) {
  if (!ALIGN_NCCL_BUILT) GTEST_SKIP() << "built without CUDA/NCCL";
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device: GPU test skipped";
  run_probe_on_gpus(1);
}

TEST(NcclGpu, TwoRanksOnTwoGpus) {
  if (!ALIGN_NCCL_BUILT) GTEST_SKIP() << "built without CUDA/NCCL";
  if (torch::cuda::device_count() < 2) GTEST_SKIP() << "fewer than two GPUs";
  run_probe_on_gpus(2);
}

}  // namespace
}  // namespace align
