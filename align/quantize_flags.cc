#include "align/quantize_flags.h"

namespace align {

void add_quantize_flags(CLI::App* cmd, QuantizeFlags& flags) {
  cmd->add_option("--quantize", flags.quantize,
                  "none, or nf4: the projections in 4-bit NormalFloat (bitsandbytes' scheme, "
                  "quantised at load)");
  cmd->add_option("--double-quant", flags.double_quant,
                  "With nf4: also quantise each block's absmax to 8 bits (default true)");
}

std::optional<Nf4Options> quantize_options(const QuantizeFlags& flags) {
  return quantize_options(parse_enum<QuantizeChoice>(flags.quantize, "--quantize"),
                          flags.double_quant);
}

}  // namespace align
