// kernels/ split CPU work over threads: at::parallel_for is a header template that runs on the
// calling thread alone in code built without OpenMP, which is how every CPU twin once ran.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "kernels/kernel_support.h"

namespace align {
namespace {

TEST(KernelSupport, ParallelForInKernelsUsesEveryThread) {
  const int threads = at::get_num_threads();
  at::set_num_threads(2);
  EXPECT_EQ(cpu_parallel_width(2), 2);
  EXPECT_EQ(cpu_parallel_width(7), 2);
  EXPECT_EQ(cpu_parallel_width(1), 1);
  at::set_num_threads(1);
  EXPECT_EQ(cpu_parallel_width(7), 1);
  at::set_num_threads(threads);
}

}  // namespace
}  // namespace align
