#include "model/linear.h"

#include <ATen/ATen.h>

namespace align {

torch::Tensor project(const torch::Tensor& x, const torch::Tensor& weight) {
  return at::linear(x, weight);
}

}  // namespace align
