// A Phi-3 model's tensors as llama.cpp names them in GGUF, mapped through model_tensor_shapes
// (model/init.h), the one table of a model's tensors. llama.cpp's names (src/llama-arch.cpp
// LLM_TENSOR_NAMES; gguf-py's tensor_mapping.py) for the two architectures align reads:
//
//   Hugging Face (model_tensor_shapes)              phi3 GGUF             llama GGUF
//   model.embed_tokens.weight                       token_embd.weight     token_embd.weight
//   model.layers.N.input_layernorm.weight           blk.N.attn_norm.w..   blk.N.attn_norm.weight
//   model.layers.N.self_attn.qkv_proj.weight        blk.N.attn_qkv.weight blk.N.attn_q + attn_k +
//                                                                         attn_v (.weight) (1)
//   model.layers.N.self_attn.o_proj.weight          blk.N.attn_output.w.. blk.N.attn_output.weight
//   model.layers.N.post_attention_layernorm.weight  blk.N.ffn_norm.weight blk.N.ffn_norm.weight
//   model.layers.N.mlp.gate_up_proj.weight          blk.N.ffn_up.weight   blk.N.ffn_gate +
//                                                   (gate rows, then up)  blk.N.ffn_up (.weight)
//   model.layers.N.mlp.down_proj.weight             blk.N.ffn_down.weight blk.N.ffn_down.weight
//   model.norm.weight                               output_norm.weight    output_norm.weight
//   lm_head.weight (absent when tied)               output.weight         output.weight
//
// (1) llama.cpp's converter permutes the rows of Q and K per head, from Hugging Face's rotate-half
// RoPE layout to its interleaved one (convert_hf_to_gguf.py LlamaModel.permute:
// reshape(heads, 2, D/2, C).swapaxes(1, 2)); reading undoes it as transformers' GGUF loader does
// (modeling_gguf_pytorch_utils.py, LlamaTensorProcessor), over H heads for Q and Hkv for K.
// A GGUF tensor's shape is the Hugging Face shape reversed (ne = {in, out}), with the same bytes.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/gguf_file.h"
#include "model/config.h"

namespace align {

enum class GgufArch { kPhi3, kLlama };
const char* gguf_arch_name(GgufArch arch);  // "phi3", "llama"

// One GGUF tensor supplying `rows` consecutive rows of a Hugging Face tensor.
struct GgufPart {
  std::string name;        // GGUF tensor name
  int64_t rows = 0;        // rows it supplies (all of them for a 1-D tensor)
  int64_t rope_heads = 0;  // > 0: undo llama.cpp's Q/K row permutation over this many heads
};

// The GGUF tensors that make up `hf_name` (a name of model_tensor_shapes(config)), in row order.
// Throws InputError for a name outside the table.
std::vector<GgufPart> gguf_parts(const std::string& hf_name, const ModelConfig& config,
                                 GgufArch arch);

// llama.cpp's Q/K row permutation per head ([heads * D, C] rows), and its inverse.
torch::Tensor permute_rope_rows(const torch::Tensor& w, int64_t heads);
torch::Tensor unpermute_rope_rows(const torch::Tensor& w, int64_t heads);

// The ggml type `align export --type` gives a tensor, as convert_hf_to_gguf.py chooses it:
// 1-D tensors and *_norm.weight stay F32; Q8_0 falls back to F16 for a row length (ne[0]) that is
// not a multiple of its 32-value blocks.
GgmlType gguf_export_type(const std::string& gguf_name, const std::vector<int64_t>& shape,
                          GgmlType requested);

// Checks that `file` holds exactly the tensors `config` implies for `arch`, plus `extra` (names
// read elsewhere, such as longrope factors): one InputError listing every missing and unexpected
// tensor and every wrong shape (GGUF name, expected, found), and every type align cannot read.
void check_gguf_tensors(const GgufFile& file, const ModelConfig& config, GgufArch arch,
                        const std::vector<std::string>& extra = {});

// The Hugging Face tensor `hf_name` of `shape` read from `file` as fp32: parts dequantised
// (model/ggml_quant.h), Q/K permutation undone, concatenated along rows.
torch::Tensor read_gguf_weight(const GgufFile& file, const std::string& hf_name,
                               const std::vector<int64_t>& shape, const ModelConfig& config,
                               GgufArch arch);

}  // namespace align
