#include "train/adamw.h"

#include <cmath>
#include <map>
#include <set>

#include "common/error.h"
#include "common/name_list.h"
#include "model/safetensors.h"

namespace align {

namespace {

bool needs_master_copy(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 || dtype == torch::kFloat16;
}

std::string dims_str(const torch::Tensor& t) {
  return shape_str(t.sizes().vec());
}

}  // namespace

void validate(const AdamWOptions& o) {
  auto check = [](bool ok, const std::string& field, double value, const std::string& want) {
    if (!ok) {
      throw InputError("optimizer." + field + " = " + std::to_string(value) + ": expected " + want);
    }
  };
  check(o.beta1 >= 0 && o.beta1 < 1, "beta1", o.beta1, "a value in [0, 1)");
  check(o.beta2 >= 0 && o.beta2 < 1, "beta2", o.beta2, "a value in [0, 1)");
  check(o.eps >= 0, "eps", o.eps, "a value >= 0");
  check(o.weight_decay >= 0, "weight_decay", o.weight_decay, "a value >= 0");
}

AdamW::AdamW(NamedTensors params, AdamWOptions options)
    : params_(std::move(params)), options_(options) {
  validate(options_);
  std::set<std::string> seen;
  torch::NoGradGuard no_grad;
  for (const auto& [name, param] : params_) {
    if (!seen.insert(name).second) throw Error("AdamW: parameter '" + name + "' given twice");
    if (!param.defined() || !param.is_floating_point()) {
      throw Error("AdamW: parameter '" + name + "' is not a floating-point tensor");
    }
    if (!param.requires_grad()) {
      throw Error("AdamW: parameter '" + name + "' does not require grad, so it would never train");
    }
    Slot s;
    s.has_master_copy = needs_master_copy(param.scalar_type());
    s.master = s.has_master_copy ? param.detach().to(torch::kFloat32, /*non_blocking=*/false,
                                                     /*copy=*/true)
                                 : param.detach();
    s.exp_avg = torch::zeros_like(s.master, torch::MemoryFormat::Contiguous);
    s.exp_avg_sq = torch::zeros_like(s.master, torch::MemoryFormat::Contiguous);
    s.decay = options_.decay_1d_params || param.dim() >= 2;
    slots_.push_back(std::move(s));
  }
}

void AdamW::step(double lr) {
  if (!(lr >= 0)) throw Error("AdamW: learning rate " + std::to_string(lr) + " is not >= 0");
  const double beta1 = options_.beta1, beta2 = options_.beta2;
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    const torch::Tensor& param = params_[i].second;
    const torch::Tensor& grad = param.grad();
    if (!grad.defined()) continue;
    Slot& s = slots_[i];
    if (s.has_master_copy && s.step == 0) s.master.copy_(param.detach());
    ++s.step;
    const torch::Tensor g = grad.to(s.master.scalar_type());

    // Same operations, same order as torch.optim.adam._single_tensor_adam.
    if (options_.weight_decay != 0 && s.decay) s.master.mul_(1 - lr * options_.weight_decay);
    s.exp_avg.lerp_(g, 1 - beta1);
    s.exp_avg_sq.mul_(beta2).addcmul_(g, g, 1 - beta2);
    const double step = static_cast<double>(s.step);
    const double bias_correction1 = 1 - std::pow(beta1, step);
    const double bias_correction2 = 1 - std::pow(beta2, step);
    const double step_size = lr / bias_correction1;
    const double bias_correction2_sqrt = std::pow(bias_correction2, 0.5);
    const torch::Tensor denom = (s.exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(options_.eps);
    s.master.addcdiv_(s.exp_avg, denom, -step_size);

    if (s.has_master_copy) param.detach().copy_(s.master);
  }
}

void AdamW::zero_grad() {
  for (auto& [name, param] : params_)
    param.mutable_grad().reset();
}

const AdamW::Slot& AdamW::slot(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); ++i) {
    if (params_[i].first == name) return slots_[i];
  }
  throw Error("AdamW: no parameter named '" + name + "'");
}

bool AdamW::decays(const std::string& name) const {
  return slot(name).decay;
}
const torch::Tensor& AdamW::master(const std::string& name) const {
  return slot(name).master;
}
int64_t AdamW::step_count(const std::string& name) const {
  return slot(name).step;
}

NamedTensors AdamW::state_tensors() const {
  NamedTensors state;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    const Slot& s = slots_[i];
    state.emplace_back("exp_avg/" + name, s.exp_avg);
    state.emplace_back("exp_avg_sq/" + name, s.exp_avg_sq);
    state.emplace_back("step/" + name, torch::tensor(s.step, torch::kInt64).reshape({}));
    if (s.has_master_copy) state.emplace_back("master/" + name, s.master);
  }
  return state;
}

void AdamW::load_state(const NamedTensors& state, const std::string& source) {
  // name -> (tensor it restores, expected dtype, expected shape)
  struct Target {
    torch::Tensor* dst;
    int64_t* step;
    torch::ScalarType dtype;
    std::vector<int64_t> shape;
  };
  std::map<std::string, Target> expected;
  for (size_t i = 0; i < params_.size(); ++i) {
    const std::string& name = params_[i].first;
    Slot& s = slots_[i];
    const auto shape = s.master.sizes().vec();
    expected["exp_avg/" + name] = {&s.exp_avg, nullptr, s.exp_avg.scalar_type(), shape};
    expected["exp_avg_sq/" + name] = {&s.exp_avg_sq, nullptr, s.exp_avg_sq.scalar_type(), shape};
    expected["step/" + name] = {nullptr, &s.step, torch::kInt64, {}};
    if (s.has_master_copy) {
      expected["master/" + name] = {&s.master, nullptr, torch::kFloat32, shape};
    }
  }
  std::vector<std::string> missing, wrong, unexpected;
  std::map<std::string, torch::Tensor> found;
  for (const auto& [name, tensor] : state) {
    auto it = expected.find(name);
    if (it == expected.end()) {
      unexpected.push_back(name);
      continue;
    }
    found[name] = tensor;
    const Target& t = it->second;
    if (tensor.sizes().vec() != t.shape || tensor.scalar_type() != t.dtype) {
      wrong.push_back(name + " (expected " + c10::toString(t.dtype) + " " + shape_str(t.shape) +
                      ", found " + c10::toString(tensor.scalar_type()) + " " + dims_str(tensor) +
                      ")");
    } else if (t.step && tensor.item<int64_t>() < 0) {
      wrong.push_back(name + " (step " + std::to_string(tensor.item<int64_t>()) + " < 0)");
    }
  }
  for (const auto& [name, target] : expected) {
    if (!found.count(name)) missing.push_back(name);
  }
  if (!missing.empty() || !wrong.empty() || !unexpected.empty()) {
    std::string message = source + ": optimizer state does not match the trained parameters";
    append_name_list(message, "missing tensors", missing);
    append_name_list(message, "tensors with the wrong dtype, shape or value", wrong);
    append_name_list(message, "unexpected tensors", unexpected);
    throw InputError(message);
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : expected) {
    if (target.step) {
      *target.step = found.at(name).item<int64_t>();
    } else {
      target.dst->copy_(found.at(name));
    }
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.has_master_copy && s.step > 0) params_[i].second.detach().copy_(s.master);
  }
}

void AdamW::load_state(const Checkpoint& state) {
  NamedTensors tensors;
  for (const std::string& name : state.names()) {
    tensors.emplace_back(name,
                         state.get(name, to_torch_dtype(state.view(name).dtype), torch::kCPU));
  }
  load_state(tensors, state.source());
}

}  // namespace align
