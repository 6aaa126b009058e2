// Device and dtype choices as users write them (--device/--dtype flags, model.device/model.dtype
// config fields), and the model section every command that loads a model reads.
#pragma once

#include <torch/types.h>

#include <string>
#include <utility>

#include "common/chat_format_kind.h"
#include "common/enum_names.h"

namespace align {

enum class DeviceChoice { kAuto, kCpu, kCuda };
enum class DtypeChoice { kAuto, kFp32, kBf16 };

template <>
struct EnumNames<DeviceChoice> {
  static constexpr std::pair<DeviceChoice, const char*> table[] = {
      {DeviceChoice::kAuto, "auto"}, {DeviceChoice::kCpu, "cpu"}, {DeviceChoice::kCuda, "cuda"}};
};
template <>
struct EnumNames<DtypeChoice> {
  static constexpr std::pair<DtypeChoice, const char*> table[] = {{DtypeChoice::kAuto, "auto"},
                                                                  {DtypeChoice::kFp32, "fp32"},
                                                                  {DtypeChoice::kFp32, "float32"},
                                                                  {DtypeChoice::kBf16, "bf16"},
                                                                  {DtypeChoice::kBf16, "bfloat16"}};
};

// kAuto picks cuda when a GPU is present, else cpu. kCuda without a GPU is an InputError naming
// `field`.
torch::Device resolve_device(DeviceChoice choice, const std::string& field);
// kAuto is bf16 on CUDA and fp32 on CPU.
torch::ScalarType resolve_dtype(DtypeChoice choice, const torch::Device& device);

// The flags' spelling of the same: parse_enum, then resolve.
torch::Device parse_device(const std::string& name, const std::string& field = "--device");
torch::ScalarType parse_dtype_flag(const std::string& name, const torch::Device& device,
                                   const std::string& field = "--dtype");

// The "model" section of a run config (config_fields.h): the model to load and where.
struct ModelSection {
  std::string path;
  DtypeChoice dtype = DtypeChoice::kAuto;
  DeviceChoice device = DeviceChoice::kAuto;
  ChatFormatKind chat_format = ChatFormatKind::kAuto;

  template <typename V>
  void fields(V& v) {
    v.required("path", path, "Hugging Face model directory (config, safetensors, tokenizer)");
    v("dtype", dtype, "auto: bf16 on CUDA, fp32 on CPU");
    v("device", device, "auto: cuda when a GPU is present");
    v("chat_format", chat_format,
      "auto: the model's own chat template (docs/chat_formats.md); phi4 or phi3 force Phi-4's "
      "or Phi-4-mini's published one");
  }
};

}  // namespace align
