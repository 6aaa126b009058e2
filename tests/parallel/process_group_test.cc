// The collectives, the store and GradSync across real processes over Gloo (CPU): 2 and 3 ranks
// of tests/parallel/parallel_probe.cc, each checking its results against values it derives itself.
#include <gtest/gtest.h>

#include "tests/parallel/rank_launcher.h"
#include "tests/test_util.h"

namespace align {
namespace {

std::string probe() {
  return std::string(ALIGN_BINARY_DIR) + "/tests/parallel_probe";
}

class ProcessGroupRanks : public ::testing::TestWithParam<int> {};

TEST_P(ProcessGroupRanks, CollectivesStoreAndGradSyncAgree) {
  testing::TempDir dir;
  const testing::JobResult job = testing::run_ranks(probe(), GetParam(), dir.path());
  ASSERT_TRUE(job.all_ok()) << job.describe();
  for (const std::string& log : job.logs)
    EXPECT_NE(log.find("probe ok"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(World, ProcessGroupRanks, ::testing::Values(2, 3));

TEST(ProcessGroupRanks, OneRankThroughTheRealBackend) {
  // The store and Gloo even for a single rank (the path a 1-GPU NCCL run takes).
  testing::TempDir dir;
  const testing::JobResult job =
      testing::run_ranks("env PROBE_ONE_RANK=1 " + probe(), 1, dir.path());
  ASSERT_TRUE(job.all_ok()) << job.describe();
  EXPECT_NE(job.logs[0].find("probe ok"), std::string::npos) << job.logs[0];
}

TEST(ProcessGroupRanks, MissingRankTimesOutWithAClearError) {
  // World size 2 but only rank 1 starts: the rendezvous must fail within the timeout, naming it.
  testing::TempDir dir;
  const int port = testing::free_port();
  const testing::RankProcess p =
      testing::start_rank("env PROBE_TIMEOUT_S=5 " + probe(), 1, 2, port, dir.file("rank-1.log"));
  const int code = testing::wait_rank(p, std::chrono::seconds(60));
  const std::string log = testing::read_file(dir.file("rank-1.log"));
  EXPECT_EQ(code, 1) << log;
  EXPECT_NE(log.find("rank 1: rendezvous at 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << log;
}

}  // namespace
}  // namespace align
