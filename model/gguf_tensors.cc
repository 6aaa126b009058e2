#include "model/gguf_tensors.h"

#include <map>
#include <set>

#include "common/error.h"
#include "model/ggml_quant.h"
#include "model/init.h"
#include "model/safetensors.h"

namespace align {
namespace {

// GGUF names of the tensors outside the decoder layers.
const std::map<std::string, std::string>& top_level_names() {
  static const std::map<std::string, std::string> names = {
      {"model.embed_tokens.weight", "token_embd.weight"},
      {"model.norm.weight", "output_norm.weight"},
      {"lm_head.weight", "output.weight"},
  };
  return names;
}

// GGUF names of a layer's tensors (after "blk.N."), by Hugging Face suffix; the fused ones list
// llama's parts.
struct LayerNames {
  const char* phi3;
  std::vector<const char*> llama;
};
const std::map<std::string, LayerNames>& layer_names() {
  static const std::map<std::string, LayerNames> names = {
      {"input_layernorm.weight", {"attn_norm.weight", {"attn_norm.weight"}}},
      {"self_attn.qkv_proj.weight",
       {"attn_qkv.weight", {"attn_q.weight", "attn_k.weight", "attn_v.weight"}}},
      {"self_attn.o_proj.weight", {"attn_output.weight", {"attn_output.weight"}}},
      {"post_attention_layernorm.weight", {"ffn_norm.weight", {"ffn_norm.weight"}}},
      {"mlp.gate_up_proj.weight", {"ffn_up.weight", {"ffn_gate.weight", "ffn_up.weight"}}},
      {"mlp.down_proj.weight", {"ffn_down.weight", {"ffn_down.weight"}}},
  };
  return names;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The shape of one part of a Hugging Face tensor: [rows, in] of a matrix, the whole of a 1-D one.
std::vector<int64_t> part_shape(const GgufPart& part, const std::vector<int64_t>& hf_shape) {
  if (hf_shape.size() == 1) return hf_shape;
  return {part.rows, hf_shape[1]};
}

// The GGUF parts of every tensor of the config, with each Hugging Face name and shape.
struct Expected {
  std::string hf_name;
  std::vector<int64_t> hf_shape;
  GgufPart part;
};
std::vector<Expected> expected_parts(const ModelConfig& config, GgufArch arch) {
  std::vector<Expected> out;
  for (const auto& [name, shape] : model_tensor_shapes(config)) {
    for (GgufPart& part : gguf_parts(name, config, arch))
      out.push_back({name, shape, std::move(part)});
  }
  return out;
}

}  // namespace

const char* gguf_arch_name(GgufArch arch) {
  return arch == GgufArch::kPhi3 ? "phi3" : "llama";
}

std::vector<GgufPart> gguf_parts(const std::string& hf_name, const ModelConfig& config,
                                 GgufArch arch) {
  const int64_t C = config.hidden_size;
  if (auto it = top_level_names().find(hf_name); it != top_level_names().end()) {
    return {{it->second, hf_name == "model.norm.weight" ? C : config.vocab_size, 0}};
  }
  const std::string prefix = "model.layers.";
  const size_t dot = hf_name.find('.', prefix.size());
  auto layer = layer_names().end();
  if (hf_name.compare(0, prefix.size(), prefix) == 0 && dot != std::string::npos) {
    layer = layer_names().find(hf_name.substr(dot + 1));
  }
  if (layer == layer_names().end()) {
    throw InputError("no GGUF name for the tensor '" + hf_name + "'");
  }
  const std::string blk = "blk." + hf_name.substr(prefix.size(), dot - prefix.size()) + ".";
  const std::string& suffix = layer->first;
  if (arch == GgufArch::kPhi3 || layer->second.llama.size() == 1) {
    const char* name = arch == GgufArch::kPhi3 ? layer->second.phi3 : layer->second.llama[0];
    int64_t rows = C;
    if (suffix == "self_attn.qkv_proj.weight") rows = config.qkv_rows();
    if (suffix == "mlp.gate_up_proj.weight") rows = config.gate_up_rows();
    return {{blk + name, rows, 0}};
  }
  const std::vector<const char*>& names = layer->second.llama;
  if (suffix == "self_attn.qkv_proj.weight") {
    return {{blk + names[0], config.q_size, config.num_heads},
            {blk + names[1], config.kv_size, config.num_kv_heads},
            {blk + names[2], config.kv_size, 0}};
  }
  return {{blk + names[0], config.intermediate_size, 0},
          {blk + names[1], config.intermediate_size, 0}};
}

torch::Tensor permute_rope_rows(const torch::Tensor& w, int64_t heads) {
  const int64_t half = w.size(0) / heads / 2;
  return w.reshape({heads, 2, half, w.size(1)}).transpose(1, 2).reshape(w.sizes());
}

torch::Tensor unpermute_rope_rows(const torch::Tensor& w, int64_t heads) {
  const int64_t half = w.size(0) / heads / 2;
  return w.reshape({heads, half, 2, w.size(1)}).transpose(1, 2).reshape(w.sizes());
}

GgmlType gguf_export_type(const std::string& gguf_name, const std::vector<int64_t>& shape,
                          GgmlType requested) {
  if (shape.size() <= 1 || ends_with(gguf_name, "_norm.weight")) return GgmlType::kF32;
  if (requested == GgmlType::kQ8_0 && shape.back() % 32 != 0) return GgmlType::kF16;
  return requested;
}

void check_gguf_tensors(const GgufFile& file, const ModelConfig& config, GgufArch arch,
                        const std::vector<std::string>& extra) {
  std::vector<std::string> problems;
  std::set<std::string> known(extra.begin(), extra.end());
  for (const Expected& e : expected_parts(config, arch)) {
    known.insert(e.part.name);
    const GgufTensor* t = file.find_tensor(e.part.name);
    const std::vector<int64_t> shape = part_shape(e.part, e.hf_shape);
    if (!t) {
      problems.push_back("missing " + e.part.name + " " + shape_str(shape) + " (for " + e.hf_name +
                         ")");
    } else if (t->shape() != shape) {
      problems.push_back("wrong shape " + e.part.name + ": expected " + shape_str(shape) +
                         ", found " + shape_str(t->shape()));
    } else if (!ggml_can_dequantize(t->type)) {
      problems.push_back("unreadable type " + e.part.name + ": " + ggml_type_name(t->type) +
                         " (align dequantises F32, F16, BF16, Q8_0, Q4_0 and Q4_1)");
    }
  }
  for (const GgufTensor& t : file.tensors()) {
    if (!known.count(t.name)) {
      problems.push_back("unexpected " + t.name + " " + shape_str(t.shape()) +
                         " (not part of a Phi-3 model of this config)");
    }
  }
  if (problems.empty()) return;
  std::string message = file.path() + ": the tensors do not match a " + gguf_arch_name(arch) +
                        " model of the metadata's sizes:";
  for (const std::string& p : problems)
    message += "\n  " + p;
  throw InputError(message);
}

torch::Tensor read_gguf_weight(const GgufFile& file, const std::string& hf_name,
                               const std::vector<int64_t>& shape, const ModelConfig& config,
                               GgufArch arch) {
  std::vector<torch::Tensor> rows;
  for (const GgufPart& part : gguf_parts(hf_name, config, arch)) {
    const std::string what = file.path() + ": tensor '" + part.name + "'";
    const GgufTensor* t = file.find_tensor(part.name);
    if (!t) throw InputError(what + " is missing");
    const std::vector<int64_t> expected = part_shape(part, shape);
    if (t->shape() != expected) {
      throw InputError(what + " has shape " + shape_str(t->shape()) + ", expected " +
                       shape_str(expected));
    }
    const int64_t cols = expected.back();
    torch::Tensor w =
        ggml_dequantize(t->data, t->type, t->shape().size() == 1 ? 1 : part.rows, cols, what);
    if (part.rope_heads > 0) w = unpermute_rope_rows(w, part.rope_heads);
    rows.push_back(std::move(w));
  }
  torch::Tensor out = rows.size() == 1 ? rows[0] : torch::cat(rows, 0);
  return out.reshape(shape).contiguous();
}

}  // namespace align
