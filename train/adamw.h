// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", arXiv 1711.05101) exactly as
// torch.optim.AdamW (amsgrad=False, maximize=False) computes it, per parameter p with gradient g at
// its t-th update (t counts updates of that parameter, starting at 1):
//
//   p  <- p * (1 - lr * weight_decay)                      decoupled decay, before the Adam step
//   m  <- lerp(m, g, 1 - beta1)          = beta1 m + (1 - beta1) g
//   v  <- v * beta2 + (1 - beta2) g * g
//   p  <- p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
//
// with the same tensor operations in the same order as torch's single-tensor implementation, so an
// fp32 run matches it bit for bit.
//
// Mixed precision: a bf16/fp16 parameter keeps an fp32 master copy and fp32 moments; the update
// runs in fp32 on the master and the result is copied (rounded to nearest) into the live weight.
// An lr of 1e-6 (Phi-4's SFT) moves a bf16 weight of magnitude ~1 by far less than half a bf16 ulp
// and would round away each step; the master accumulates it. fp32/fp64 parameters are updated in
// place in their own dtype (no copy). The master of a parameter is taken from its live weight at
// that parameter's first update (so weights loaded after constructing the optimizer are honoured);
// from then on the master is the source of truth and the live weight is its rounded copy.
//
// Gradients are read from each live weight's .grad() (autograd accumulates micro-batches into it);
// a parameter whose grad is undefined is skipped, as torch does (its step count does not advance).
// Parameters may live on any device; state lives next to each parameter.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

#include "model/checkpoint.h"
#include "train/named_tensors.h"

namespace align {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;    // torch's default; applied to the parameters decays() selects
  bool decay_1d_params = false;  // false: decay only weights with >= 2 dims (not norms or biases,
                                 // as HF Trainer); true: decay every parameter (torch's default)
};

// Throws InputError naming the field when an option is out of range (betas in [0, 1), eps >= 0,
// weight_decay >= 0).
void validate(const AdamWOptions& options);

class AdamW {
 public:
  // `params`: the live weights to train (leaf tensors with requires_grad, floating point, distinct
  // names). Allocates per parameter: exp_avg and exp_avg_sq (fp32, or the parameter's dtype when it
  // is fp32/fp64), and an fp32 master copy for bf16/fp16 parameters.
  AdamW(NamedTensors params, AdamWOptions options = {});

  // One update of every parameter that has a gradient, with learning rate `lr` (>= 0).
  void step(double lr);
  // Drops every gradient (torch's zero_grad(set_to_none=True)); the next backward starts afresh.
  void zero_grad();

  // Whether weight decay applies to parameter `name` (its parameter group).
  bool decays(const std::string& name) const;
  // The weight the update runs on: the fp32 master, or the live weight itself for fp32/fp64.
  const torch::Tensor& master(const std::string& name) const;
  // Updates applied so far to parameter `name`.
  int64_t step_count(const std::string& name) const;
  const NamedTensors& params() const { return params_; }
  const AdamWOptions& options() const { return options_; }

  // The state to save, per parameter NAME (shapes as the parameter unless noted):
  //   exp_avg/NAME, exp_avg_sq/NAME   fp32 (parameter dtype for fp32/fp64 parameters)
  //   step/NAME                       int64 [] (0-d)
  //   master/NAME                     fp32, only for bf16/fp16 parameters
  // The tensors alias the live state: write them out before the next step().
  NamedTensors state_tensors() const;

  // Restores state written by state_tensors() (any order). Validates everything before changing
  // anything: one InputError naming `source` lists every missing and unexpected tensor and every
  // tensor with the wrong shape or dtype. Live bf16/fp16 weights are set to their rounded master.
  void load_state(const NamedTensors& state, const std::string& source);
  // Same, from a safetensors file (errors name the file).
  void load_state(const Checkpoint& state);

 private:
  struct Slot {
    torch::Tensor master;      // fp32 copy for bf16/fp16; the live weight itself otherwise
    torch::Tensor exp_avg;     // like master
    torch::Tensor exp_avg_sq;  // like master
    int64_t step = 0;
    bool has_master_copy = false;
    bool decay = false;
  };
  const Slot& slot(const std::string& name) const;

  NamedTensors params_;
  std::vector<Slot> slots_;  // parallel to params_
  AdamWOptions options_;
};

}  // namespace align
