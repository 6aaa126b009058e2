// The GGUF commands (docs/gguf.md):
//
// align export --gguf OUT.gguf [--type f32|f16|bf16|q8_0] (MODEL_DIR | --model DIR)
//   A Phi-3-layout model folder (config.json, safetensors, tokenizer, chat template; the
//   `merged/` or `model/` output of sft and dpo, or any such folder) as one GGUF file for
//   llama.cpp, Ollama and LM Studio, as convert_hf_to_gguf.py writes it: the phi3 architecture's
//   metadata (model/gguf_config.h), the tokenizer and chat template (data/gguf_vocab.h), and the
//   tensors under llama.cpp's names (model/gguf_tensors.h) in the type asked for (norms stay F32;
//   Q8_0 falls back to F16 for rows that are not whole blocks). The file is written to a
//   temporary name and renamed when complete. What llama.cpp's phi3 cannot run as transformers
//   does is refused before anything is written, naming the config key or tokenizer field.
//
// align import --gguf FILE.gguf --out DIR [--dtype fp32|bf16] [--max-shard-size BYTES]
//              [--overwrite]
//   A GGUF of llama.cpp's llama or phi3 architecture as a Hugging Face Phi-3 folder that every
//   align command (and transformers) reads: config.json from the metadata; the weights
//   dequantised (F32, F16, BF16, Q8_0, Q4_0, Q4_1; model/ggml_quant.h), llama's split projections
//   fused into qkv_proj and gate_up_proj with the Q/K row permutation undone, saved in fp32
//   (default) or bf16; the tokenizer rebuilt as tokenizer.json, tokenizer_config.json and
//   chat_template.jinja; generation_config.json. The folder is built under DIR.partial and
//   renamed into place when complete.
#include <filesystem>
#include <iostream>
#include <map>

#include "align/commands.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/gguf_file.h"
#include "common/hub_cache.h"
#include "common/partial_dir.h"
#include "data/gguf_vocab.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/generation_config.h"
#include "model/ggml_quant.h"
#include "model/gguf_config.h"
#include "model/gguf_tensors.h"
#include "model/init.h"

namespace align {
namespace {
namespace fs = std::filesystem;

struct ExportOptions {
  std::string model_dir, model, gguf, type = "f16";
};

struct FileType {
  GgmlType tensors;
  uint32_t file_type;  // general.file_type (llama.cpp's llama_ftype)
};
const std::map<std::string, FileType>& file_types() {
  static const std::map<std::string, FileType> types = {{"f32", {GgmlType::kF32, 0}},
                                                        {"f16", {GgmlType::kF16, 1}},
                                                        {"q8_0", {GgmlType::kQ8_0, 7}},
                                                        {"bf16", {GgmlType::kBF16, 32}}};
  return types;
}

// A tensor of the checkpoint encoded as `type` a block of rows at a time.
GgufTensorSource tensor_source(std::shared_ptr<const Checkpoint> checkpoint, const std::string& hf,
                               const std::string& name, const std::vector<int64_t>& shape,
                               GgmlType type) {
  GgufTensorSource t;
  t.name = name;
  t.ne.assign(shape.rbegin(), shape.rend());
  t.type = type;
  t.write_bytes = [checkpoint, hf, type](const std::function<void(const void*, size_t)>& sink) {
    const TensorView& view = checkpoint->view(hf);
    const torch::Tensor w = checkpoint->get(hf, to_torch_dtype(view.dtype), torch::kCPU);
    const torch::Tensor rows = w.dim() == 1 ? w.view({1, -1}) : w;
    const int64_t step = std::max<int64_t>(1, (int64_t{1} << 22) / rows.size(1));
    for (int64_t r = 0; r < rows.size(0); r += step) {
      const std::vector<uint8_t> bytes =
          ggml_quantize(rows.slice(0, r, std::min(r + step, rows.size(0))), type);
      sink(bytes.data(), bytes.size());
    }
  };
  return t;
}

void run_export(const ExportOptions& opt) {
  auto type = file_types().find(opt.type);
  if (type == file_types().end()) {
    throw InputError("--type: expected f32, f16, bf16 or q8_0, found '" + opt.type + "'");
  }
  const std::string& given = opt.model.empty() ? opt.model_dir : opt.model;
  if (given.empty()) throw InputError("export: give the model folder (MODEL_DIR or --model)");
  const std::string dir = resolve_model_dir(given, "--model").dir;
  const ModelConfig config = load_model_config(dir);
  check_llama_cpp_phi3(config, dir + "/config.json");
  GgufVocab vocab = gguf_vocab_from_folder(dir, config.vocab_size);
  if (!vocab.bos && config.bos_token_id) vocab.bos = config.bos_token_id;
  if (!vocab.eos && !config.eos_token_ids.empty()) vocab.eos = config.eos_token_ids[0];
  if (!vocab.pad && config.pad_token_id) vocab.pad = config.pad_token_id;
  auto checkpoint = std::make_shared<const Checkpoint>(Checkpoint::open(dir));
  checkpoint->check(model_tensor_shapes(config));

  GgufWriter out;
  write_phi3_config(config, out);
  out.set("general.type", GgufValue::string("model"));
  out.set("general.name", GgufValue::string(fs::path(dir).lexically_normal().filename().string()));
  out.set("general.file_type", GgufValue::u32(type->second.file_type));
  out.set("general.quantization_version", GgufValue::u32(2));  // GGML_QNT_VERSION
  write_gguf_vocab(vocab, out);
  std::map<std::string, int> written;
  for (const auto& [hf, shape] : model_tensor_shapes(config)) {
    const std::string name = gguf_parts(hf, config, GgufArch::kPhi3).front().name;
    const GgmlType tensor_type = gguf_export_type(name, shape, type->second.tensors);
    out.add_tensor(tensor_source(checkpoint, hf, name, shape, tensor_type));
    ++written[ggml_type_name(tensor_type)];
  }
  const fs::path parent = fs::path(opt.gguf).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  out.write(opt.gguf);

  for (const std::string& note : vocab.notes)
    std::cerr << "align: note: " << note << "\n";
  std::cout << "wrote " << opt.gguf << " (" << fs::file_size(opt.gguf) << " bytes): phi3, "
            << config.num_parameters() << " parameters,";
  for (const auto& [name, count] : written)
    std::cout << " " << count << " " << name;
  std::cout << " tensors; tokenizer gpt2/" << vocab.pre << ", " << vocab.tokens.size()
            << " tokens, " << vocab.merges.size() << " merges"
            << (vocab.chat_template.empty() ? ", no chat template" : ", chat template") << "\n";
}

struct ImportOptions {
  std::string gguf, out, dtype = "fp32";
  int64_t max_shard_bytes = 5'000'000'000;
  bool overwrite = false;
};

void run_import(const ImportOptions& opt) {
  torch::ScalarType dtype;
  if (opt.dtype == "fp32" || opt.dtype == "float32") {
    dtype = torch::kFloat32;
  } else if (opt.dtype == "bf16" || opt.dtype == "bfloat16") {
    dtype = torch::kBFloat16;
  } else {
    throw InputError("--dtype: expected fp32 or bf16, found '" + opt.dtype + "'");
  }
  const std::shared_ptr<const GgufFile> file = GgufFile::open(opt.gguf);
  GgufModelConfig model = read_gguf_config(*file);
  ModelConfig& config = model.config;
  config.dtype = dtype == torch::kFloat32 ? "float32" : "bfloat16";
  const GgufVocab vocab = read_gguf_vocab(*file);
  if (static_cast<int64_t>(vocab.tokens.size()) != config.vocab_size) {
    throw InputError(file->path() + ": 'tokenizer.ggml.tokens' has " +
                     std::to_string(vocab.tokens.size()) + " tokens, token_embd.weight " +
                     std::to_string(config.vocab_size) + " rows");
  }
  check_gguf_tensors(*file, config, model.arch, phi3_extra_tensors(config));

  PartialDir out(opt.out, opt.overwrite, "--out");
  std::vector<TensorToSave> tensors;
  for (const auto& [name, shape] : model_tensor_shapes(config)) {
    TensorToSave t;
    t.name = name;
    t.shape = shape;
    t.dtype = dtype;
    t.produce = [file, name = name, shape = shape, config, arch = model.arch] {
      return read_gguf_weight(*file, name, shape, config, arch);
    };
    tensors.push_back(std::move(t));
  }
  save_checkpoint(out.dir(), tensors, opt.max_shard_bytes);
  write_file_atomic(out.dir() + "/config.json", to_hf_json(config).dump(2) + "\n");
  write_file_atomic(out.dir() + "/generation_config.json",
                    generation_config_json(config).dump(2) + "\n");
  write_tokenizer_folder(vocab, out.dir(), config.max_position_embeddings);
  out.commit();
  std::cout << "wrote " << opt.out << " from " << gguf_arch_name(model.arch) << " " << file->path()
            << ": " << config.num_parameters() << " parameters (" << config.dtype << "), vocab "
            << config.vocab_size << ", " << config.num_layers << " layers, hidden "
            << config.hidden_size << ", tokenizer gpt2/" << vocab.pre
            << (vocab.chat_template.empty() ? ", no chat template" : ", chat template") << "\n";
}

void add_export_command(CLI::App& app) {
  auto opt = std::make_shared<ExportOptions>();
  CLI::App* cmd =
      app.add_subcommand("export", "Write a model folder as a GGUF file for llama.cpp (phi3)");
  auto* positional = cmd->add_option("model_dir", opt->model_dir, "Model folder (Phi-3 layout)");
  auto* flag = cmd->add_option("--model", opt->model, "Model folder (instead of MODEL_DIR)");
  positional->excludes(flag);
  cmd->add_option("--gguf", opt->gguf, "Output GGUF file (written atomically)")->required();
  cmd->add_option("--type", opt->type,
                  "Tensor type: f32, f16 (default), bf16 or q8_0; norms stay f32 (docs/gguf.md)");
  cmd->callback([opt] { run_export(*opt); });
}

void add_import_command(CLI::App& app) {
  auto opt = std::make_shared<ImportOptions>();
  CLI::App* cmd = app.add_subcommand(
      "import", "Write a llama or phi3 GGUF file as a Hugging Face Phi-3 model folder");
  cmd->add_option("--gguf", opt->gguf, "Input GGUF file")->required();
  cmd->add_option("--out", opt->out, "Output model folder")->required();
  cmd->add_option("--dtype", opt->dtype, "Stored dtype: fp32 (default) or bf16");
  cmd->add_option("--max-shard-size", opt->max_shard_bytes,
                  "Largest shard in bytes (default 5e9); larger models are sharded");
  cmd->add_flag("--overwrite", opt->overwrite, "Replace an existing output folder");
  cmd->callback([opt] { run_import(*opt); });
}

}  // namespace

void add_gguf_commands(CLI::App& app) {
  add_export_command(app);
  add_import_command(app);
}

}  // namespace align
