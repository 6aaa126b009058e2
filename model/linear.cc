#include "model/linear.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>

#include "common/error.h"

namespace align {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The dense weight of an NF4 projection for one product, in `dtype`. On the CPU it is dequantised
// into a per-thread workspace that every product reuses (sized to the largest projection seen and
// kept for the thread's life): a fresh buffer each product pays a page fault per 4 KiB page, which
// cost more than the dequantisation itself (docs/PERFORMANCE.md, "QLoRA memory"). Valid until the
// thread's next call; the caller's GEMM reads it and drops it.
torch::Tensor dense_for_product(const Nf4Tensor& q, torch::ScalarType dtype) {
  if (!q.packed.is_cpu() || (dtype != torch::kFloat && dtype != torch::kBFloat16)) {
    return nf4_dequantize(q, dtype);
  }
  thread_local torch::Tensor workspace;  // [bytes] uint8
  const int64_t bytes = q.numel() * static_cast<int64_t>(c10::elementSize(dtype));
  if (!workspace.defined() || workspace.numel() < bytes) {
    workspace = torch::Tensor();  // release the smaller one first
    workspace = at::empty({bytes}, at::kByte);
  }
  torch::Tensor w = workspace.narrow(0, 0, bytes).view(dtype).view(q.shape);
  nf4_dequantize_rows(q, 0, w);
  return w;
}

struct Nf4Holder : torch::CustomClassHolder {
  explicit Nf4Holder(Nf4Tensor w) : weight(std::move(w)) {}
  Nf4Tensor weight;
};

// y = x W^T for a frozen NF4 W: keeps the NF4 storage, not the dense weight, and dequantises again
// for the input gradient (bitsandbytes' MatMul4Bit.backward: grad_A = grad_out @ dequant(W)).
class Nf4LinearFunction : public torch::autograd::Function<Nf4LinearFunction> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x,
                               c10::intrusive_ptr<Nf4Holder> holder) {
    auto out = at::linear(x, dense_for_product(holder->weight, x.scalar_type()));
    ctx->saved_data["weight"] = c10::IValue::make_capsule(std::move(holder));
    return out;
  }
  // Gradient slots follow forward's arguments: x, then the weight (none: it is frozen).
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto holder =
        c10::static_intrusive_pointer_cast<Nf4Holder>(ctx->saved_data["weight"].toCapsule());
    const torch::Tensor& g = grad_outputs[0];
    return {at::matmul(g, dense_for_product(holder->weight, g.scalar_type())), torch::Tensor()};
  }
};

}  // namespace

LinearWeight::LinearWeight(torch::Tensor dense) : dense_(std::move(dense)) {}

LinearWeight::LinearWeight(Nf4Tensor nf4, torch::ScalarType dtype)
    : nf4_(std::move(nf4)), nf4_dtype_(dtype) {
  if (nf4_->shape.size() != 2) throw Error("LinearWeight: an NF4 weight must be [out, in]");
}

const torch::Tensor& LinearWeight::dense() const {
  if (nf4_) throw Error("LinearWeight: the weight is NF4-quantised, not dense");
  return dense_;
}

torch::Tensor& LinearWeight::mutable_dense() {
  if (nf4_) throw Error("LinearWeight: the weight is NF4-quantised, not dense");
  return dense_;
}

const Nf4Tensor& LinearWeight::nf4() const {
  if (!nf4_) throw Error("LinearWeight: the weight is dense, not NF4-quantised");
  return *nf4_;
}

int64_t LinearWeight::out_features() const {
  return nf4_ ? nf4_->shape[0] : dense_.size(0);
}
int64_t LinearWeight::in_features() const {
  return nf4_ ? nf4_->shape[1] : dense_.size(1);
}
torch::ScalarType LinearWeight::dtype() const {
  return nf4_ ? nf4_dtype_ : dense_.scalar_type();
}
torch::Device LinearWeight::device() const {
  return nf4_ ? nf4_->device() : dense_.device();
}

int64_t LinearWeight::nbytes() const {
  return nf4_ ? nf4_->nbytes() : static_cast<int64_t>(dense_.nbytes());
}

torch::Tensor LinearWeight::dequantized() const {
  return nf4_ ? nf4_dequantize(*nf4_, nf4_dtype_) : dense_;
}

LinearWeight LinearWeight::to(torch::ScalarType dtype, torch::Device device) const {
  if (nf4_) return LinearWeight(nf4_->to(device), dtype);
  return LinearWeight(dense_.to(device, dtype));
}

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight) {
  return at::linear(x, weight);
}

torch::Tensor project(const torch::Tensor& x, const LinearWeight& weight) {
  if (!weight.quantized()) return at::linear(x, weight.dense());
  if (torch::GradMode::is_enabled() && x.requires_grad()) {
    return Nf4LinearFunction::apply(x, c10::make_intrusive<Nf4Holder>(weight.nf4()));
  }
  return at::linear(x, dense_for_product(weight.nf4(), x.scalar_type()));
}

}  // namespace align
