// --quantize and --double-quant: how the commands that load a model from flags (align generate,
// align logprobs) store its frozen projections; the flag spelling of model.quantize and
// model.double_quant in every run config (docs/qlora.md).
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>

#include "model/nf4.h"

namespace align {

struct QuantizeFlags {
  std::string quantize = "none";
  bool double_quant = true;
};

// Registers both flags on `cmd`, writing into `flags` (which must outlive the parse).
void add_quantize_flags(CLI::App* cmd, QuantizeFlags& flags);

// Phi3Model::load's `quantize`; throws InputError "--quantize: expected none or nf4, found 'x'".
std::optional<Nf4Options> quantize_options(const QuantizeFlags& flags);

}  // namespace align
