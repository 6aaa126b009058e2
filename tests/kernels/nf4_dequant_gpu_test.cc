// NF4 dequantisation: the CUDA kernel against the LibTorch reference (itself checked against
// bitsandbytes in tests/model/nf4_test.cc) over awkward shapes (odd element counts, partial last
// blocks, one block, more than 256 blocks), plain and double-quantised absmax, both output dtypes,
// and weights that are column slices. Exact: both form the same fp32 products, rounded once. Skips
// (with a message) without a GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "kernels/nf4_dequant_op.h"
#include "model/nf4.h"
#include "tests/gpu_test_util.h"

namespace align {
namespace {

#define REQUIRE_GPU() REQUIRE_GPU_WITH(cuda_kernels_built())

TEST(Nf4DequantGpu, KernelEqualsReference) {
  REQUIRE_GPU();
  torch::manual_seed(0);
  const std::vector<std::vector<int64_t>> shapes = {{1, 1},    {7, 9},     {3, 64},   {130, 70},
                                                    {19, 333}, {257, 128}, {640, 96}, {1, 4097}};
  for (const auto& shape : shapes) {
    for (bool dq : {false, true}) {
      for (int64_t blocksize : {64, 128}) {
        SCOPED_TRACE(c10::str(shape, " double_quant ", dq, " blocksize ", blocksize));
        torch::Tensor w = torch::randn(shape) * 0.03;
        const Nf4Tensor cpu = nf4_quantize(w, {blocksize, dq});
        const Nf4Tensor gpu = cpu.to(torch::kCUDA);
        for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {
          torch::Tensor ref = nf4_dequantize_reference(cpu, dtype);
          torch::Tensor got = nf4_dequantize_cuda(gpu, dtype);
          EXPECT_EQ(got.scalar_type(), dtype);
          EXPECT_TRUE(torch::equal(got.cpu(), ref));
          EXPECT_TRUE(torch::equal(nf4_dequantize(gpu, dtype).cpu(), ref));  // dispatch
        }
      }
    }
  }
}

// The quantiser reads any layout: a column slice of a wider bf16 tensor on the GPU.
TEST(Nf4DequantGpu, NonContiguousSourceAndEmpty) {
  REQUIRE_GPU();
  torch::Tensor wide = (torch::randn({33, 200}) * 0.02).to(torch::kBFloat16).cuda();
  torch::Tensor slice = wide.narrow(1, 5, 131);
  const Nf4Tensor q = nf4_quantize(slice, {64, true}).to(torch::kCUDA);
  EXPECT_TRUE(torch::equal(
      nf4_dequantize_cuda(q, torch::kBFloat16).cpu(),
      nf4_dequantize_reference(nf4_quantize(slice.cpu().contiguous()), torch::kBFloat16)));
  const Nf4Tensor empty = nf4_quantize(torch::zeros({0, 64}), {64, false}).to(torch::kCUDA);
  EXPECT_EQ(nf4_dequantize_cuda(empty, torch::kFloat32).numel(), 0);
}

}  // namespace
}  // namespace align
