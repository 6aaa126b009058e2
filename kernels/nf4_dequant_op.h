// The Torch layer over the NF4 dequantisation kernel (kernels/nf4_dequant.h): the storage of one
// NF4-quantised weight as bitsandbytes keeps it (quantize_4bit with quant_type="nf4"), and its
// dequantisation: the kernel for CUDA fp32/bf16 outputs, a plain LibTorch reference otherwise.
// Quantisation, and where the levels come from, is model/nf4.h.
#pragma once

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

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
// build with the kernels, a one-pass CPU loop of the same fp32 operations for a CPU weight and an
// fp32/bf16 output, the reference otherwise.
torch::Tensor nf4_dequantize(const Nf4Tensor& q, torch::ScalarType dtype);

// Plain LibTorch, any device: bitsandbytes' dequantize_blockwise (absmax) and dequantize_4bit as
// fp32 products cast to `dtype` once.
torch::Tensor nf4_dequantize_reference(const Nf4Tensor& q, torch::ScalarType dtype);

// The fp32 absmax of every block [blocks] (the stored one, or its double-quantised decoding).
torch::Tensor nf4_block_absmax(const Nf4Tensor& q);

// The kernel: q on CUDA, dtype fp32 or bf16. Throws align::Error on anything else or when built
// without nvcc.
torch::Tensor nf4_dequantize_cuda(const Nf4Tensor& q, torch::ScalarType dtype);

}  // namespace align
