// The Torch layer over the NF4 dequantisation kernel (kernels/nf4_dequant.h): the storage of one
// NF4-quantised weight as bitsandbytes keeps it (quantize_4bit with quant_type="nf4"), and its
// dequantisation: the kernel for CUDA fp32/bf16 outputs, its CPU twin for CPU ones, a plain
// LibTorch reference otherwise.
// Quantisation, and where the levels come from, is model/nf4.h.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

#include "kernels/nf4_dequant_cpu.h"  // kernels::CpuPath

namespace align {

// bitsandbytes' QuantState for one weight of n = prod(shape) elements, with blocksize elements per
// absmax (the last block may be shorter). With double quantisation (compress_statistics=True) the
// fp32 absmax is itself stored as 8-bit codes of (absmax - offset) in blocks of 256.
struct Nf4Tensor {
  std::vector<int64_t> shape;  // [out, in] of the dense weight
  torch::Tensor packed;        // [(n + 1) / 2] uint8: two codes per byte, first in the high nibble
  torch::Tensor absmax;        // [blocks] fp32; uint8 codes with double quantisation
  torch::Tensor absmax2;       // [ceil(blocks / 256)] fp32, double quantisation only
  torch::Tensor code2;         // [256] fp32 the 8-bit dynamic map, double quantisation only
  float offset = 0;            // mean of the fp32 absmax, double quantisation only
  int64_t blocksize = 64;      // even

  bool double_quant() const { return absmax2.defined(); }
  int64_t numel() const;
  int64_t blocks() const { return (numel() + blocksize - 1) / blocksize; }
  // Bytes held: packed codes, absmax (and the second-level scales and map).
  int64_t nbytes() const;
  torch::Device device() const { return packed.device(); }
  Nf4Tensor to(torch::Device device) const;
};

// The 16 NF4 levels (bitsandbytes' get_4bit_type("nf4")), ascending, -1 to 1 with level 7 = 0.
const std::array<float, 16>& nf4_levels();

// The dense weight [shape] in `dtype`: the kernel for a CUDA weight and an fp32/bf16 output in a
// build with the kernels, its CPU twin (kernels/nf4_dequant_cpu.h: a table per block, AVX2 where
// the CPU has it, over at::parallel_for) for a CPU weight and an fp32/bf16 output, the reference
// otherwise. Every path gives the reference's values bit for bit.
torch::Tensor nf4_dequantize(const Nf4Tensor& q, torch::ScalarType dtype);

// The CPU twin on a CPU weight, fp32 or bf16 (throws Error otherwise); `path` Plain skips the
// vector code (the tests compare both with the reference).
torch::Tensor nf4_dequantize_cpu(const Nf4Tensor& q, torch::ScalarType dtype,
                                 kernels::CpuPath path = kernels::CpuPath::Best);

// Rows [row0, row0 + out.size(0)) of the dense weight [out, in] written into `out` ([rows, in],
// contiguous, fp32 or bf16) by the CPU path, the same values as nf4_dequantize's rows: for
// products taken a slice of rows at a time. q on the CPU; throws Error otherwise.
void nf4_dequantize_rows(const Nf4Tensor& q, int64_t row0, torch::Tensor& out);

// Plain LibTorch, any device: bitsandbytes' dequantize_blockwise (absmax) and dequantize_4bit as
// fp32 products cast to `dtype` once.
torch::Tensor nf4_dequantize_reference(const Nf4Tensor& q, torch::ScalarType dtype);

// The fp32 absmax of every block [blocks] (the stored one, or its double-quantised decoding).
torch::Tensor nf4_block_absmax(const Nf4Tensor& q);

// The kernel: q on CUDA, dtype fp32 or bf16. Throws align::Error on anything else or when built
// without nvcc.
torch::Tensor nf4_dequantize_cuda(const Nf4Tensor& q, torch::ScalarType dtype);

}  // namespace align
