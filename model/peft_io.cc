#include "model/peft_io.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "common/name_list.h"
#include "model/checkpoint.h"
#include "model/safetensors.h"

namespace align {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

constexpr const char* kConfigFile = "adapter_config.json";
constexpr const char* kWeightsFile = "adapter_model.safetensors";

// A number as JSON: an integer when it is one (PEFT writes lora_alpha 32, not 32.0).
json number(double x) {
  if (std::floor(x) == x && std::abs(x) < 1e15) return static_cast<int64_t>(x);
  return x;
}

std::string model_dtype_name(torch::ScalarType dtype) {
  if (dtype == at::kBFloat16) return "bfloat16";
  if (dtype == at::kHalf) return "float16";
  if (dtype == at::kFloat) return "float32";
  throw Error(std::string("save_model_dir: cannot save a model of dtype ") + c10::toString(dtype));
}

// Fields of adapter_config.json that change what an adapter computes; each must hold the value
// that means "plain LoRA" (or be absent / null).
void check_unsupported(const json& j, const std::string& source) {
  auto fail = [&](const std::string& key, const std::string& expected) {
    throw InputError(source + ": field '" + key + "' is " + j.at(key).dump() + "; align supports " +
                     expected + " only");
  };
  auto present = [&](const char* key) { return j.contains(key) && !j.at(key).is_null(); };
  for (const char* key : {"use_dora", "use_rslora", "fan_in_fan_out", "lora_bias", "use_qalora"}) {
    if (present(key) && j.at(key) != json(false)) fail(key, "false");
  }
  if (present("bias") && j.at("bias") != json("none")) fail("bias", "\"none\"");
  for (const char* key : {"rank_pattern", "alpha_pattern"}) {
    if (present(key) && !(j.at(key).is_object() && j.at(key).empty())) fail(key, "{}");
  }
  for (const char* key : {"layers_to_transform", "layers_pattern", "modules_to_save",
                          "exclude_modules", "trainable_token_indices", "target_parameters",
                          "layer_replication", "alora_invocation_tokens"}) {
    if (present(key) && !(j.at(key).is_array() && j.at(key).empty())) fail(key, "null");
  }
  if (present("task_type") && j.at("task_type") != json("CAUSAL_LM")) {
    fail("task_type", "\"CAUSAL_LM\"");
  }
}

std::vector<std::string> parse_targets(const json& j, const std::string& source) {
  const json& t = j.at("target_modules");
  if (t == json("all-linear")) return expand_lora_targets({"all-linear"});
  if (t.is_string()) {
    // PEFT full-matches a string against module paths as a regular expression.
    throw InputError(source + ": target_modules is the pattern " + t.dump() +
                     "; align reads a list of module names (qkv_proj, o_proj, gate_up_proj, "
                     "down_proj) or \"all-linear\"");
  }
  if (!t.is_array()) {
    throw InputError(source + ": target_modules must be a list of module names, found " + t.dump());
  }
  std::vector<std::string> out;
  for (const json& m : t) {
    if (!m.is_string()) {
      throw InputError(source + ": target_modules entries must be strings, found " + m.dump());
    }
    out.push_back(m.get<std::string>());
  }
  // PEFT saves target_modules as a set; keep align's canonical order.
  std::vector<std::string> ordered;
  for (const auto& name : lora_module_names()) {
    if (std::find(out.begin(), out.end(), name) != out.end()) ordered.push_back(name);
  }
  return ordered.size() == out.size() ? ordered : out;  // unknown names fail in validation
}

std::string config_path(const std::string& dir) {
  if (fs::is_regular_file(dir)) return dir;
  return (fs::path(dir) / kConfigFile).string();
}

}  // namespace

void save_peft_adapter(const std::string& dir, const Phi3Model& model,
                       const std::string& base_model_name_or_path, const std::string& revision) {
  const LoraOptions& o = model.lora_options();
  fs::create_directories(dir);
  std::vector<TensorSource> sources;
  for (const auto& [name, tensor] : model.lora_parameters()) {
    sources.push_back({name, Dtype::F32, tensor.sizes().vec(), [t = tensor](const auto& sink) {
                         auto x = t.detach().to(at::kCPU, at::kFloat).contiguous();
                         sink(x.data_ptr(), x.nbytes());
                       }});
  }
  write_safetensors((fs::path(dir) / kWeightsFile).string(), sources);

  // The fields every PEFT release since 0.10 knows; later fields keep their defaults.
  json config = {
      {"alpha_pattern", json::object()},
      {"auto_mapping", nullptr},
      {"base_model_name_or_path", base_model_name_or_path},
      {"bias", "none"},
      {"fan_in_fan_out", false},
      {"inference_mode", true},
      {"init_lora_weights", true},
      {"layer_replication", nullptr},
      {"layers_pattern", nullptr},
      {"layers_to_transform", nullptr},
      {"loftq_config", json::object()},
      {"lora_alpha", number(o.alpha)},
      {"lora_dropout", o.dropout},
      {"megatron_config", nullptr},
      {"megatron_core", "megatron.core"},
      {"modules_to_save", nullptr},
      {"peft_type", "LORA"},
      {"r", o.rank},
      {"rank_pattern", json::object()},
      {"revision", revision.empty() ? json(nullptr) : json(revision)},
      {"target_modules", o.target_modules},
      {"task_type", "CAUSAL_LM"},
      {"use_dora", false},
      {"use_rslora", false},
  };
  write_file_atomic((fs::path(dir) / kConfigFile).string(), config.dump(2) + "\n");
}

LoraOptions read_peft_config(const std::string& dir) {
  const std::string path = config_path(dir);
  if (!fs::exists(path)) {
    throw InputError(path + ": no such file (a PEFT adapter directory holds adapter_config.json)");
  }
  const json j = parse_json(read_file(path), path);
  if (!j.is_object()) throw InputError(path + ": expected a JSON object");
  if (!j.contains("peft_type") || j.at("peft_type") != json("LORA")) {
    throw InputError(path + ": peft_type is " +
                     (j.contains("peft_type") ? j.at("peft_type").dump() : "absent") +
                     "; align reads LoRA adapters (\"LORA\") only");
  }
  check_unsupported(j, path);
  LoraOptions o;
  auto need = [&](const char* key, bool integer) -> const json& {
    if (!j.contains(key) || !(integer ? j.at(key).is_number_integer() : j.at(key).is_number())) {
      throw InputError(path + ": field '" + key + "' must be " +
                       (integer ? "an integer" : "a number") + ", found " +
                       (j.contains(key) ? j.at(key).dump() : "<absent>"));
    }
    return j.at(key);
  };
  o.rank = need("r", true).get<int64_t>();
  o.alpha = need("lora_alpha", false).get<double>();
  o.dropout = j.contains("lora_dropout") ? need("lora_dropout", false).get<double>() : 0.0;
  if (o.rank < 1) throw InputError(path + ": field 'r' must be at least 1, found " + j["r"].dump());
  if (!(o.alpha > 0)) throw InputError(path + ": field 'lora_alpha' must be positive");
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    throw InputError(path + ": field 'lora_dropout' must be in [0, 1), found " +
                     j["lora_dropout"].dump());
  }
  if (!j.contains("target_modules")) throw InputError(path + ": field 'target_modules' is absent");
  o.target_modules = parse_targets(j, path);
  validate_lora_options(o, path);
  return o;
}

LoraOptions load_peft_adapter(const std::string& dir, Phi3Model& model) {
  const LoraOptions o = read_peft_config(dir);
  const std::string path = (fs::path(dir) / kWeightsFile).string();
  if (!fs::exists(path)) {
    const bool bin = fs::exists(fs::path(dir) / "adapter_model.bin");
    throw InputError(path + ": no such file" +
                     std::string(bin ? " (only adapter_model.bin, a pickle, is there: re-save the "
                                       "adapter with safe_serialization=True)"
                                     : ""));
  }
  const Checkpoint file = Checkpoint::open(path);

  // Expected names and shapes: every target module of every layer.
  const int64_t L = model.config().num_layers;
  std::vector<std::tuple<std::string, std::vector<int64_t>, int64_t, std::string, char>> expected;
  for (int64_t l = 0; l < L; ++l) {
    const LayerWeights& w = model.weights().layers.at(static_cast<size_t>(l));
    for (const auto& module : o.target_modules) {
      const LinearWeight& base = w.projection(module);
      expected.emplace_back(peft_tensor_name(l, module, 'A'),
                            std::vector<int64_t>{o.rank, base.in_features()}, l, module, 'A');
      expected.emplace_back(peft_tensor_name(l, module, 'B'),
                            std::vector<int64_t>{base.out_features(), o.rank}, l, module, 'B');
    }
  }
  std::vector<std::string> missing, misshaped, unexpected, bad_dtype;
  std::set<std::string> wanted;
  std::set<int64_t> file_ranks;
  for (const auto& [name, shape, l, module, which] : expected) {
    wanted.insert(name);
    if (!file.contains(name)) {
      missing.push_back(name);
      continue;
    }
    const TensorView& v = file.view(name);
    if (v.shape != shape) {
      misshaped.push_back(name + " (expected " + shape_str(shape) + ", found " +
                          shape_str(v.shape) + ")");
      if (v.shape.size() == 2) file_ranks.insert(which == 'A' ? v.shape[0] : v.shape[1]);
    }
    if (v.dtype != Dtype::F32 && v.dtype != Dtype::BF16 && v.dtype != Dtype::F16) {
      bad_dtype.push_back(name + " (" + dtype_name(v.dtype) + ")");
    }
  }
  for (const auto& name : file.names()) {
    if (!wanted.count(name)) unexpected.push_back(name);
  }
  if (!missing.empty() || !misshaped.empty() || !unexpected.empty() || !bad_dtype.empty()) {
    std::string message = path + ": adapter does not match " + kConfigFile +
                          " (r = " + std::to_string(o.rank) + ", target_modules) and the model";
    append_name_list(message, "missing tensors", missing);
    append_name_list(message, "tensors with the wrong shape", misshaped);
    append_name_list(message, "unexpected tensors", unexpected);
    append_name_list(message, "tensors of a dtype other than F32, BF16, F16", bad_dtype);
    if (file_ranks.size() == 1 && *file_ranks.begin() != o.rank) {
      message += "\n  hint: the tensors hold rank " + std::to_string(*file_ranks.begin()) +
                 " but " + kConfigFile + " says r = " + std::to_string(o.rank);
    }
    throw InputError(message);
  }

  std::vector<LayerLora> adapters(static_cast<size_t>(L));
  for (const auto& [name, shape, l, module, which] : expected) {
    LoraAdapter& a = adapters[static_cast<size_t>(l)].at(module);
    auto t = file.get(name, at::kFloat, model.device()).clone().requires_grad_(true);
    (which == 'A' ? a.a : a.b) = t;
  }
  model.set_lora(o, std::move(adapters));
  return o;
}

void save_model_dir(const std::string& dir, const Phi3Model& model,
                    const std::string& copy_files_from, int64_t max_shard_bytes) {
  if (model.has_lora()) {
    throw Error(
        "save_model_dir: the model has LoRA adapters attached; merge_lora() (or "
        "remove_lora()) first, or save them with save_peft_adapter");
  }
  ModelConfig config = model.config();
  config.dtype = model_dtype_name(model.dtype());
  fs::create_directories(dir);
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (auto& [name, t] : model.named_weights())
    tensors.emplace_back(name, t.detach());
  save_checkpoint(dir, tensors, max_shard_bytes);
  write_file_atomic((fs::path(dir) / "config.json").string(), to_hf_json(config).dump(2) + "\n");
  if (copy_files_from.empty()) return;
  for (const char* name :
       {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json",
        "merges.txt", "added_tokens.json", "chat_template.jinja", "generation_config.json"}) {
    const fs::path from = fs::path(copy_files_from) / name;
    if (fs::exists(from))
      write_file_atomic((fs::path(dir) / name).string(), read_file(from.string()));
  }
}

}  // namespace align
