// The linear projections of a Phi3 layer: y = x W^T, no bias anywhere in Phi3. (The element-wise
// ops, RMSNorm and the SwiGLU gate, are fused kernels with references in kernels/.)
//
// A projection's weight has one of two storage kinds, and every caller (training, scoring, the
// rollout engine) applies it through project():
//   dense  [out, in] in the model dtype (trainable);
//   NF4    frozen 4-bit NormalFloat (model/nf4.h, QLoRA), dequantised to the model dtype on the fly
//          for each product (dequantise, then one GEMM), never kept dense. Its backward (the input
//          gradient of LoRA training) dequantises again instead of saving the dense weight, as
//          bitsandbytes' MatMul4Bit does. On the CPU the dequantised weight goes into one
//          per-thread buffer every product reuses (the largest projection's size, kept for the
//          thread's life): at most one projection is dense at a time, and no fresh allocation
//          pays its page faults per product.
#pragma once

#include <torch/types.h>

#include <optional>

#include "kernels/nf4_dequant_op.h"

namespace align {

class LinearWeight {
 public:
  LinearWeight() = default;
  LinearWeight(torch::Tensor dense);  // NOLINT(google-explicit-constructor): the common kind
  // NF4 storage dequantised to `dtype` (the model dtype) for compute.
  LinearWeight(Nf4Tensor nf4, torch::ScalarType dtype);

  bool defined() const { return dense_.defined() || nf4_.has_value(); }
  bool quantized() const { return nf4_.has_value(); }
  // The dense weight [out, in]; throws Error for an NF4 weight.
  const torch::Tensor& dense() const;
  torch::Tensor& mutable_dense();
  const Nf4Tensor& nf4() const;  // throws Error for a dense weight

  int64_t out_features() const;
  int64_t in_features() const;
  torch::ScalarType dtype() const;  // the compute dtype
  torch::Device device() const;
  // Bytes of the stored weight (the NF4 codes and scales, or the dense tensor).
  int64_t nbytes() const;
  // The dense weight itself, or a fresh dequantised copy [out, in] in dtype().
  torch::Tensor dequantized() const;
  // Dense weights cast and moved; NF4 storage moved, computing in `dtype`.
  LinearWeight to(torch::ScalarType dtype, torch::Device device) const;

 private:
  torch::Tensor dense_;           // [out, in]
  std::optional<Nf4Tensor> nf4_;  // frozen
  torch::ScalarType nf4_dtype_ = torch::kFloat;
};

// x [..., in], weight [out, in] -> [..., out].
torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight);
// The same for either storage kind: for NF4, x W_deq^T with W_deq dequantised in x's dtype.
torch::Tensor project(const torch::Tensor& x, const LinearWeight& weight);

}  // namespace align
