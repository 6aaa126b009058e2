// Device and dtype choices as users write them (--device/--dtype flags, model.device/model.dtype
// config fields); `field` names the flag or field in error messages.
#pragma once

#include <torch/types.h>

#include <string>

namespace align {

// "auto" picks cuda when a GPU is present, else cpu. "cuda" without a GPU is an InputError.
torch::Device parse_device(const std::string& name, const std::string& field = "--device");
// "auto" is bf16 on CUDA and fp32 on CPU; else fp32 / bf16 (also float32 / bfloat16).
torch::ScalarType parse_dtype_flag(const std::string& name, const torch::Device& device,
                                   const std::string& field = "--dtype");

}  // namespace align
