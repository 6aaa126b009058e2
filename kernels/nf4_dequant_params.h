// The parameters of NF4 dequantisation (kernels/nf4_dequant.h describes the scheme), shared by the
// CUDA kernel (nf4_dequant.cu) and its CPU twin (nf4_dequant_cpu.h). A plain struct of raw
// pointers: no Torch, no CUDA.
#pragma once

#include <cstdint>

namespace align::kernels {

struct Nf4DequantParams {
  const uint8_t* packed = nullptr;     // [(n + 1) / 2] two codes per byte, first in the high nibble
  const float* absmax_f32 = nullptr;   // [blocks] fp32 (plain), or nullptr with double quantisation
  const uint8_t* absmax_u8 = nullptr;  // [blocks] 8-bit codes of absmax - offset (double quant)
  const float* absmax2 = nullptr;      // [ceil(blocks / 256)] fp32 scale of each 256 absmax codes
  const float* code2 = nullptr;        // [256] fp32 the 8-bit dynamic map
  float offset = 0;                    // mean of the fp32 absmax (double quantisation)
  const float* levels = nullptr;       // [16] fp32 the NF4 levels
  void* out = nullptr;                 // [n - out_first] T: element i at out[i - out_first]
  int64_t out_first = 0;               // a slice of rows starts here (the CUDA kernel: 0)
  int64_t n = 0;
  int64_t blocksize = 64;  // elements per absmax, even
};

}  // namespace align::kernels
