// Tensors with names, in a fixed order: how the trainers pass around the weights they update, the
// optimizer state they save and the tensors a checkpoint holds. Names are the Hugging Face tensor
// names (model.layers.0.self_attn.qkv_proj.weight, ...) or the adapter names LoRA gives its
// weights.
#pragma once

#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace align {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

}  // namespace align
