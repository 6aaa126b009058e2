// The CPU twin of the NF4 dequantisation kernel (kernels/nf4_dequant.h): the same params and the
// same fp32 operations, bit for bit. Torch-free; the op layer (nf4_dequant_op.cc) splits the
// blocks over LibTorch's threads.
//
// Per block: its absmax decoded once (code2[c] * absmax2[b / 256] + offset with double
// quantisation) and its 16 outputs cast_T(levels[k] * absmax) computed once into a table; every
// element is then a table lookup, no multiply or rounding per element. With AVX2 (chosen at load
// time) 64 elements (32 packed bytes) are looked up at a time with byte shuffles (bf16: the
// table's low and high bytes; fp32: two 8-entry permutes); plain C++ otherwise and for a block's
// tail. Round to nearest even, a NaN to bf16's quiet NaN, as c10::BFloat16.
#pragma once

#include <cstdint>

#include "kernels/kernel_support.h"  // kernels::DType
#include "kernels/nf4_dequant_params.h"

namespace align::kernels {

enum class CpuPath { Best, Plain };  // Plain: no vector code (the tests compare the two)

// Elements [begin, end) of the flat weight, params.out_first <= begin <= end <= params.n, into
// params.out[i - params.out_first].
void nf4_dequant_cpu(const Nf4DequantParams& params, DType dtype, int64_t begin, int64_t end,
                     CpuPath path = CpuPath::Best);

// Whether CpuPath::Best uses AVX2 on this CPU.
bool nf4_dequant_cpu_vectorized();

}  // namespace align::kernels
