#include "model/activation_checkpoint.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include <mutex>
#include <utility>

#include "kernels/kernel_support.h"

namespace align {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The default generators a block on `device` may draw from: the CPU one, and the device's own.
std::vector<at::Generator> generators_for(const torch::Device& device) {
  std::vector<at::Generator> gens = {at::globalContext().defaultGenerator(at::kCPU)};
  if (!device.is_cpu()) gens.push_back(at::globalContext().defaultGenerator(device));
  return gens;
}

std::vector<torch::Tensor> get_states(std::vector<at::Generator>& gens) {
  std::vector<torch::Tensor> states;
  for (auto& g : gens) {
    std::lock_guard<std::mutex> lock(g.mutex());
    states.push_back(g.get_state());
  }
  return states;
}

void set_states(std::vector<at::Generator>& gens, const std::vector<torch::Tensor>& states) {
  for (size_t i = 0; i < gens.size(); ++i) {
    std::lock_guard<std::mutex> lock(gens[i].mutex());
    gens[i].set_state(states[i]);
  }
}

// What the graph node keeps besides the saved tensors.
struct Closure : torch::CustomClassHolder {
  CheckpointFn fn;
  bool preserve_rng = false;
  torch::Device device = torch::kCPU;
  std::vector<torch::Tensor> rng_states;  // generator states before the forward
};

// Sets the generators to the forward's states for its lifetime, then puts the current ones back.
class ReplayRng {
 public:
  explicit ReplayRng(const Closure& c) : active_(c.preserve_rng) {
    if (!active_) return;
    gens_ = generators_for(c.device);
    current_ = get_states(gens_);
    set_states(gens_, c.rng_states);
  }
  ~ReplayRng() {
    if (active_) set_states(gens_, current_);
  }
  ReplayRng(const ReplayRng&) = delete;
  ReplayRng& operator=(const ReplayRng&) = delete;

 private:
  bool active_;
  std::vector<at::Generator> gens_;
  std::vector<torch::Tensor> current_;
};

class CheckpointFunction : public torch::autograd::Function<CheckpointFunction> {
 public:
  // Runs with grad mode off (Function::apply turns it off), so fn builds no graph.
  static torch::Tensor forward(AutogradContext* ctx, c10::intrusive_ptr<Closure> closure,
                               const torch::Tensor& input, at::TensorList params) {
    if (closure->preserve_rng) {
      auto gens = generators_for(closure->device);
      closure->rng_states = get_states(gens);
    }
    variable_list saved = {input};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);  // inputs only: also checks nothing wrote into them since
    ctx->saved_data["closure"] = c10::IValue::make_capsule(closure);
    // The references, here and in the recompute: a fused kernel serving only one of the two
    // (this pass wants no gradient) would round differently, and the layer the backward
    // differentiates would not be the one that ran.
    const ReferenceOpsScope references;
    return closure->fn(input);
  }

  // Gradient slots follow forward's arguments: closure (none), input, then each param.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto closure =
        c10::static_intrusive_pointer_cast<Closure>(ctx->saved_data["closure"].toCapsule());
    const variable_list saved = ctx->get_saved_variables();
    const size_t num_params = saved.size() - 1;
    variable_list grads(2 + num_params);

    torch::Tensor x = saved[0].detach();
    const bool input_grad = ctx->needs_input_grad(0);
    x.requires_grad_(input_grad);
    torch::Tensor y;
    {
      ReplayRng replay(*closure);
      torch::AutoGradMode enable_grad(true);
      const ReferenceOpsScope references;  // as in forward
      y = closure->fn(x);
    }
    variable_list wrt;
    std::vector<size_t> slots;
    if (input_grad) {
      wrt.push_back(x);
      slots.push_back(1);
    }
    for (size_t i = 0; i < num_params; ++i) {
      if (ctx->needs_input_grad(1 + i) && saved[1 + i].requires_grad()) {
        wrt.push_back(saved[1 + i]);
        slots.push_back(2 + i);
      }
    }
    if (wrt.empty() || !y.requires_grad()) return grads;
    auto computed = torch::autograd::grad({y}, wrt, {grad_outputs[0]}, /*retain_graph=*/false,
                                          /*create_graph=*/false, /*allow_unused=*/true);
    for (size_t k = 0; k < slots.size(); ++k)
      grads[slots[k]] = computed[k];
    return grads;
  }
};

}  // namespace

torch::Tensor checkpoint(CheckpointFn fn, const torch::Tensor& input,
                         const std::vector<torch::Tensor>& params, bool preserve_rng) {
  bool needs_graph = torch::GradMode::is_enabled() && input.requires_grad();
  for (const auto& p : params)
    needs_graph = needs_graph || (torch::GradMode::is_enabled() && p.requires_grad());
  if (!needs_graph) return fn(input);
  auto closure = c10::make_intrusive<Closure>();
  closure->fn = std::move(fn);
  closure->preserve_rng = preserve_rng;
  closure->device = input.device();
  return CheckpointFunction::apply(closure, input, at::TensorList(params));
}

}  // namespace align
