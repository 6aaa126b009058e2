// model.quantize and model.double_quant: how the base model of a run config loads, the one key
// path of every command that reads a config (align sft, dpo, grpo: QLoRA's frozen base; align
// eval, pts: a quantised model to sample, as bitsandbytes' load_in_4bit). The model sections of
// train/train_sections.h and eval/query_sections.h derive from it; the flags' spelling is
// align/quantize_flags.h's --quantize and --double-quant.
#pragma once

#include "model/nf4.h"

namespace align {

struct QuantizeFields {
  QuantizeChoice quantize = QuantizeChoice::kNone;
  bool double_quant = true;

  // `quantize_help`: what nf4 means to the command reading the section.
  template <typename V>
  void fields(V& v, const char* quantize_help) {
    v("quantize", quantize, quantize_help);
    v("double_quant", double_quant,
      "with nf4: also quantise the absmax of each block to 8 bits (bnb_4bit_use_double_quant)");
  }
};

}  // namespace align
