// align init (--preset NAME | --config config.json) [--tokenizer DIR] --out DIR [--seed N]
//            [--dtype bf16|fp32] [--max-shard-size BYTES] [--overwrite]
// Writes a randomly initialised model directory in Hugging Face layout: config.json,
// generation_config.json, model.safetensors (or shards + index) and, with --tokenizer, the
// tokenizer files, with the vocabulary size following the tokenizer (rounded up to a multiple of
// 64, as Phi-4 pads its 100,352-entry embedding). The directory is built under OUT.partial and
// renamed into place when complete.
#include <filesystem>
#include <iostream>

#include "align/commands.h"
#include "common/atomic_file.h"
#include "common/error.h"
#include "common/hub_cache.h"
#include "common/partial_dir.h"
#include "data/tokenizer.h"
#include "model/config.h"
#include "model/generation_config.h"
#include "model/init.h"

namespace align {
namespace {
namespace fs = std::filesystem;

struct InitOptions {
  std::string preset, config, tokenizer, out, dtype = "bf16";
  uint64_t seed = 0;
  int64_t max_shard_bytes = 5'000'000'000;
  bool overwrite = false;
};

constexpr const char* kTokenizerFiles[] = {"tokenizer.json",
                                           "tokenizer_config.json",
                                           "special_tokens_map.json",
                                           "added_tokens.json",
                                           "vocab.json",
                                           "merges.txt",
                                           "chat_template.jinja"};

int64_t round_up(int64_t n, int64_t multiple) {
  return (n + multiple - 1) / multiple * multiple;
}

// Vocabulary size and special ids follow the tokenizer.
void adopt_tokenizer(ModelConfig& config, const Tokenizer& tokenizer) {
  config.vocab_size = round_up(tokenizer.vocab_size(), 64);
  config.bos_token_id = tokenizer.bos_id();
  if (tokenizer.eos_id()) config.eos_token_ids = {*tokenizer.eos_id()};
  config.pad_token_id = tokenizer.pad_id();
}

void run_init(const InitOptions& opt) {
  ModelConfig config =
      opt.preset.empty() ? load_model_config(opt.config) : model_preset(opt.preset);
  std::optional<Tokenizer> tokenizer;
  std::string tokenizer_dir;
  if (!opt.tokenizer.empty()) {
    tokenizer_dir = resolve_model_dir(opt.tokenizer, "--tokenizer").dir;
    tokenizer = Tokenizer::load(tokenizer_dir);
    adopt_tokenizer(config, *tokenizer);
  }
  validate_config(config, opt.preset.empty() ? opt.config : "preset " + opt.preset);
  torch::ScalarType dtype;
  if (opt.dtype == "bf16" || opt.dtype == "bfloat16") {
    dtype = torch::kBFloat16;
  } else if (opt.dtype == "fp32" || opt.dtype == "float32") {
    dtype = torch::kFloat32;
  } else {
    throw InputError("--dtype: expected bf16 or fp32, found '" + opt.dtype + "'");
  }

  PartialDir out(opt.out, opt.overwrite, "--out");
  const fs::path partial = out.dir();
  write_random_model(partial.string(), config, opt.seed, dtype, opt.max_shard_bytes);
  write_file_atomic((partial / "generation_config.json").string(),
                    generation_config_json(config).dump(2) + "\n");
  if (tokenizer) {
    for (const char* name : kTokenizerFiles) {
      const fs::path from = fs::path(tokenizer_dir) / name;
      if (fs::exists(from)) fs::copy_file(from, partial / name);
    }
  }
  out.commit();
  std::cout << "wrote " << opt.out << ": " << config.num_parameters() << " parameters, vocab "
            << config.vocab_size << ", " << config.num_layers << " layers, hidden "
            << config.hidden_size << "\n";
}

}  // namespace

void add_init_command(CLI::App& app) {
  auto opt = std::make_shared<InitOptions>();
  CLI::App* cmd = app.add_subcommand("init", "Write a randomly initialised model directory");
  auto* preset = cmd->add_option("--preset", opt->preset, "phi-4, phi-4-mini or tiny");
  auto* config = cmd->add_option("--config", opt->config, "A Hugging Face config.json");
  preset->excludes(config);
  cmd->add_option("--tokenizer", opt->tokenizer,
                  "Tokenizer directory: its files are copied and set the vocabulary size");
  cmd->add_option("--out", opt->out, "Output model directory")->required();
  cmd->add_option("--seed", opt->seed, "Random seed (default 0)");
  cmd->add_option("--dtype", opt->dtype, "Stored dtype: bf16 (default) or fp32");
  cmd->add_option("--max-shard-size", opt->max_shard_bytes,
                  "Largest shard in bytes (default 5e9); larger models are sharded");
  cmd->add_flag("--overwrite", opt->overwrite, "Replace an existing output directory");
  cmd->callback([opt, preset, config] {
    if (preset->count() + config->count() != 1) {
      throw InputError("init: give exactly one of --preset or --config");
    }
    run_init(*opt);
  });
}

}  // namespace align
