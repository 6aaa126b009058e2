#include "model/lora.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"
#include "common/seeding.h"
#include "model/linear.h"

namespace align {
namespace {

const char* module_parent(const std::string& module) {
  return module == "qkv_proj" || module == "o_proj" ? "self_attn" : "mlp";
}

}  // namespace

bool LoraOptions::operator==(const LoraOptions& other) const {
  return rank == other.rank && alpha == other.alpha && dropout == other.dropout &&
         target_modules == other.target_modules;
}

void validate_lora_options(const LoraOptions& o, const std::string& source) {
  auto fail = [&](const std::string& field, const std::string& what) {
    throw InputError(source + ": lora." + field + " " + what);
  };
  if (o.rank < 1) fail("rank", "must be at least 1, got " + std::to_string(o.rank));
  if (!(o.alpha > 0) || !std::isfinite(o.alpha)) {
    fail("alpha", "must be positive and finite, got " + std::to_string(o.alpha));
  }
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    fail("dropout", "must be in [0, 1), got " + std::to_string(o.dropout));
  }
  if (o.target_modules.empty()) fail("target_modules", "must name at least one module");
  std::set<std::string> seen;
  for (const auto& m : o.target_modules) {
    const auto& known = lora_module_names();
    if (std::find(known.begin(), known.end(), m) == known.end()) {
      fail("target_modules",
           "has unknown module '" + m + "' (expected qkv_proj, o_proj, gate_up_proj, down_proj)");
    }
    if (!seen.insert(m).second) fail("target_modules", "names '" + m + "' twice");
  }
}

std::vector<std::string> expand_lora_targets(const std::vector<std::string>& targets) {
  std::vector<std::string> out;
  for (const std::string& t : targets) {
    if (t != "all-linear") {
      out.push_back(t);
      continue;
    }
    for (const std::string& m : lora_module_names())
      if (std::find(out.begin(), out.end(), m) == out.end()) out.push_back(m);
  }
  return out;
}

LoraAdapter& LayerLora::at(const std::string& module) {
  if (module == "qkv_proj") return qkv;
  if (module == "o_proj") return o;
  if (module == "gate_up_proj") return gate_up;
  if (module == "down_proj") return down;
  throw InputError("unknown LoRA target module '" + module +
                   "' (expected qkv_proj, o_proj, gate_up_proj or down_proj)");
}

const LoraAdapter& LayerLora::at(const std::string& module) const {
  return const_cast<LayerLora*>(this)->at(module);
}

const std::vector<std::string>& lora_module_names() {
  static const std::vector<std::string> names = {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"};
  return names;
}

std::string lora_module_path(int64_t layer, const std::string& module) {
  return "model.layers." + std::to_string(layer) + "." + module_parent(module) + "." + module;
}

std::string peft_tensor_name(int64_t layer, const std::string& module, char which) {
  return "base_model.model." + lora_module_path(layer, module) + ".lora_" + which + ".weight";
}

LoraAdapter init_lora_adapter(int64_t out_features, int64_t in_features, int64_t rank,
                              uint64_t seed, const std::string& name, torch::Device device) {
  // kaiming_uniform_(a=sqrt(5)) on [r, in]: fan_in = in, gain = sqrt(2 / (1 + 5)),
  // bound = gain * sqrt(3 / fan_in) = 1 / sqrt(in).
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  auto gen = at::make_generator<at::CPUGeneratorImpl>(named_seed(seed, name));
  LoraAdapter adapter;
  adapter.a = at::empty({rank, in_features}, at::kFloat).uniform_(-bound, bound, gen).to(device);
  adapter.b = at::zeros({out_features, rank}, at::TensorOptions(at::kFloat).device(device));
  adapter.a.requires_grad_(true);
  adapter.b.requires_grad_(true);
  return adapter;
}

torch::Tensor lora_linear(const torch::Tensor& x, const LinearWeight& weight,
                          const LoraAdapter& adapter, const LoraApply& apply) {
  auto base = project(x, weight);
  if (!apply.enabled || !adapter.defined()) return base;
  auto xa = x.to(adapter.a.scalar_type());
  if (apply.training && apply.dropout > 0) xa = at::dropout(xa, apply.dropout, /*train=*/true);
  auto delta = at::linear(at::linear(xa, adapter.a), adapter.b) * apply.scale;  // [..., out] fp32
  return (base + delta).to(base.scalar_type());
}

torch::Tensor merged_weight(const torch::Tensor& weight, const LoraAdapter& adapter, double scale) {
  auto delta = at::matmul(adapter.b.to(at::kFloat), adapter.a.to(at::kFloat)) * scale;
  return (weight.to(at::kFloat) + delta).to(weight.scalar_type());
}

}  // namespace align
