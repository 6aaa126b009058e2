// NF4 quantisation of a frozen weight at load time (QLoRA: Dettmers et al. 2023, arXiv 2305.14314),
// as bitsandbytes' quantize_4bit(quant_type="nf4", blocksize=64, compress_statistics=...) computes
// it (bitsandbytes 0.50.2, its CPU/default backend; docs/qlora.md has the mapping):
//
//   per block of `blocksize` consecutive elements of the flat weight (the last may be shorter):
//     absmax = max |w|;   s = clamp(w * (1 / max(absmax, 1e-38)), -1, 1)   (the last, partial
//                          block divides: w / max(absmax, 1e-38))
//     code   = bucketize(s, midpoints of the 16 levels)   (a tie goes to the lower level)
//   packed two codes a byte, the first in the high nibble.
//   double quantisation: offset = mean(absmax); (absmax - offset) in blocks of 256 is scaled by its
//     block's max |.| and stored as the index of the nearest value of the signed 8-bit dynamic map
//     (create_dynamic_map(signed=True)); ties to the lower index.
//
// The weight is quantised in the dtype the model loads it in (what transformers does: load in
// torch_dtype, then quantise). Dequantisation is kernels/nf4_dequant_op.h.
#pragma once

#include <torch/types.h>

#include <optional>
#include <string>
#include <utility>

#include "common/enum_names.h"
#include "kernels/nf4_dequant_op.h"

namespace align {

struct Nf4Options {
  int64_t blocksize = 64;    // elements per absmax (bitsandbytes' default for 4-bit)
  bool double_quant = true;  // bnb_4bit_use_double_quant: 8-bit absmax in blocks of 256
};

// How a frozen base stores its projections, as configs and flags spell it: model.quantize in every
// run config (model/quantize_fields.h: QLoRA in align sft, dpo, grpo; sampling in align eval,
// pts), --quantize (align generate, align logprobs); each beside a double_quant switch.
enum class QuantizeChoice { kNone, kNf4 };

template <>
struct EnumNames<QuantizeChoice> {
  static constexpr std::pair<QuantizeChoice, const char*> table[] = {
      {QuantizeChoice::kNone, "none"}, {QuantizeChoice::kNf4, "nf4"}};
};

// The load options of a choice (Phi3Model::load's `quantize`): NF4 with `double_quant` for kNf4,
// nullopt for kNone.
std::optional<Nf4Options> quantize_options(QuantizeChoice choice, bool double_quant);

// Quantises `weight` (any shape and floating dtype, any device; computed on the CPU) into NF4 on
// the CPU. Throws InputError for a non-finite weight or an odd blocksize.
Nf4Tensor nf4_quantize(const torch::Tensor& weight, const Nf4Options& options = {});

// bitsandbytes' create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8): [256] fp32,
// ascending, the 8-bit code of the double-quantised absmax.
torch::Tensor dynamic_map_signed();

}  // namespace align
