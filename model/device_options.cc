#include "model/device_options.h"

#include <torch/cuda.h>

#include "common/error.h"

namespace align {

torch::Device parse_device(const std::string& name, const std::string& field) {
  if (name == "auto") return torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda") {
    if (!torch::cuda::is_available()) {
      throw InputError(field + " cuda: no CUDA device is available (use cpu)");
    }
    return torch::kCUDA;
  }
  throw InputError(field + ": expected auto, cpu or cuda, found '" + name + "'");
}

torch::ScalarType parse_dtype_flag(const std::string& name, const torch::Device& device,
                                   const std::string& field) {
  if (name == "auto") return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  if (name == "fp32" || name == "float32") return torch::kFloat32;
  if (name == "bf16" || name == "bfloat16") return torch::kBFloat16;
  throw InputError(field + ": expected auto, fp32 or bf16, found '" + name + "'");
}

}  // namespace align
