// --device and --dtype flags shared by the commands that run a model.
#pragma once

#include <torch/types.h>

#include <string>

namespace align {

// "auto" picks cuda when a GPU is present, else cpu. "cuda" without a GPU is an InputError.
torch::Device parse_device(const std::string& name);
// "auto" is bf16 on CUDA and fp32 on CPU; else fp32 / bf16 (also float32 / bfloat16).
torch::ScalarType parse_dtype_flag(const std::string& name, const torch::Device& device);

}  // namespace align
