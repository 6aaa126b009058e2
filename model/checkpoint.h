// Hugging Face checkpoints as Torch tensors: a directory holding model.safetensors, or shards
// model-0000k-of-0000n.safetensors listed in model.safetensors.index.json.
#pragma once

#include <torch/types.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/safetensors.h"

namespace align {

// Expected tensor names and shapes, in the order a model declares them.
using TensorShapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;

class Checkpoint {
 public:
  // `path` is a model directory (sharded with an index, or a single model.safetensors) or one
  // .safetensors file. Every file is mapped and validated; an index naming a missing shard, or a
  // tensor the index places in a shard that lacks it, throws InputError naming both files.
  static Checkpoint open(const std::string& path);

  const std::string& source() const { return source_; }
  std::vector<std::string> names() const;
  bool contains(const std::string& name) const { return views_.count(name) > 0; }
  const TensorView& view(const std::string& name) const;  // throws InputError when absent

  // The named tensor as `dtype` on `device`. On CPU with a matching dtype and an aligned pointer
  // the result is a zero-copy view of the mapping (kept alive by the tensor); otherwise a copy.
  torch::Tensor get(const std::string& name, torch::ScalarType dtype, torch::Device device) const;

  // Throws one InputError listing every missing tensor, every unexpected tensor and every tensor
  // whose shape differs from `expected` (name, expected shape, found shape).
  void check(const TensorShapes& expected) const;

 private:
  std::string source_;
  std::vector<std::shared_ptr<const SafetensorsFile>> files_;
  std::map<std::string, TensorView> views_;
  std::map<std::string, std::shared_ptr<const SafetensorsFile>> owner_;
};

torch::ScalarType to_torch_dtype(Dtype dtype);  // throws InputError for dtypes Torch lacks
Dtype from_torch_dtype(torch::ScalarType dtype);

// A tensor to save, produced on demand (so a 14B random model is never whole in memory).
struct TensorToSave {
  std::string name;
  std::vector<int64_t> shape;
  torch::ScalarType dtype = torch::kBFloat16;
  std::function<torch::Tensor()> produce;  // returns a tensor of `shape`; cast to `dtype` on save
};

// Writes Hugging Face layout into `dir` (created if needed): a single model.safetensors when all
// tensors fit in `max_shard_bytes`, else model-0000k-of-0000n.safetensors plus
// model.safetensors.index.json ({"metadata": {"total_size"}, "weight_map"}). Every file is written
// atomically; the index last.
void save_checkpoint(const std::string& dir, const std::vector<TensorToSave>& tensors,
                     int64_t max_shard_bytes = 5'000'000'000);

// Convenience: save ready tensors under their names, each in its own dtype.
void save_checkpoint(const std::string& dir,
                     const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                     int64_t max_shard_bytes = 5'000'000'000);

}  // namespace align
