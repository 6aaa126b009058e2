// Hugging Face exports of a trained model: PEFT LoRA adapter directories (what
// peft.PeftModel.from_pretrained reads) and full model directories (what
// transformers.AutoModelForCausalLM.from_pretrained reads, e.g. after merge_lora()).
//
// An adapter directory holds
//   adapter_config.json        {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r", "lora_alpha",
//                               "lora_dropout", "target_modules", "bias": "none",
//                               "fan_in_fan_out": false, "use_rslora": false, "use_dora": false,
//                               "base_model_name_or_path", ...}
//   adapter_model.safetensors
//   base_model.model.model.layers.{i}.{self_attn|mlp}.{module}.lora_A.weight
//                              [r, in] and ...lora_B.weight [out, r], fp32
#pragma once

#include <cstdint>
#include <string>

#include "model/lora.h"
#include "model/phi3_model.h"

namespace align {

// Writes adapter_config.json and adapter_model.safetensors into `dir` (created if needed), each
// atomically. `base_model_name_or_path` is recorded as given (a hub id or a directory), and
// `revision` (the hub revision of the base, PEFT's "revision"; empty: null). Throws Error when the
// model has no adapters.
void save_peft_adapter(const std::string& dir, const Phi3Model& model,
                       const std::string& base_model_name_or_path,
                       const std::string& revision = "");

// Reads `dir`/adapter_config.json (or that file itself). target_modules is a list of Phi3 module
// names or "all-linear". Throws InputError naming the file and the field for anything align does
// not implement: another peft_type, use_dora, use_rslora, bias, fan_in_fan_out, rank or alpha
// patterns, layers_to_transform, modules_to_save, regex target_modules.
LoraOptions read_peft_config(const std::string& dir);

// Reads both files of `dir` and attaches the adapters to `model` (replacing any), fp32 on the
// model's device, requires_grad. One InputError naming adapter_model.safetensors lists every
// missing, unexpected and misshaped tensor (expected vs found shape, with a hint when the file's
// rank differs from the config's r).
LoraOptions load_peft_adapter(const std::string& dir, Phi3Model& model);

// Writes a Hugging Face model directory: config.json (to_hf_json, dtype set to the model's) and
// the weights (save_checkpoint: one file, or shards and an index past `max_shard_bytes`), in the
// model's dtype. Throws Error when LoRA adapters are attached: merge_lora() (or remove_lora())
// first. When `copy_files_from` names a model directory, its tokenizer and generation-config files
// that exist (tokenizer.json, tokenizer_config.json, special_tokens_map.json, vocab.json,
// merges.txt, added_tokens.json, chat_template.jinja, generation_config.json) are copied along.
void save_model_dir(const std::string& dir, const Phi3Model& model,
                    const std::string& copy_files_from = "",
                    int64_t max_shard_bytes = 5'000'000'000);

}  // namespace align
