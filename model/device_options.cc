#include "model/device_options.h"

#include <torch/cuda.h>

#include "common/error.h"

namespace align {

torch::Device resolve_device(DeviceChoice choice, const std::string& field) {
  switch (choice) {
    case DeviceChoice::kAuto:
      return torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
    case DeviceChoice::kCpu:
      return torch::kCPU;
    case DeviceChoice::kCuda:
      if (!torch::cuda::is_available()) {
        throw InputError(field + " cuda: no CUDA device is available (use cpu)");
      }
      return torch::kCUDA;
  }
  throw Error("resolve_device: unknown choice");
}

torch::ScalarType resolve_dtype(DtypeChoice choice, const torch::Device& device) {
  switch (choice) {
    case DtypeChoice::kAuto:
      return device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
    case DtypeChoice::kFp32:
      return torch::kFloat32;
    case DtypeChoice::kBf16:
      return torch::kBFloat16;
  }
  throw Error("resolve_dtype: unknown choice");
}

torch::Device parse_device(const std::string& name, const std::string& field) {
  return resolve_device(parse_enum<DeviceChoice>(name, field), field);
}

torch::ScalarType parse_dtype_flag(const std::string& name, const torch::Device& device,
                                   const std::string& field) {
  return resolve_dtype(parse_enum<DtypeChoice>(name, field), device);
}

}  // namespace align
