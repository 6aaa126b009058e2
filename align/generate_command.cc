// align generate --model DIR (--prompt TEXT | --input FILE.jsonl) [--chat] [--num-samples N]
//   [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--seed S]
//   [--stop STR]... --output FILE.jsonl [--dtype] [--device] [--quantize nf4 [--double-quant B]]
//   [--kv-budget-tokens N]
// One output line per sample: prompt_index, sample_index, token_ids (generated only), text,
// logprobs (of the sampled tokens under the model's unmodified distribution: temperature 1, no
// truncation), finish_reason ("stop" or "length").
#include <algorithm>
#include <filesystem>

#include "align/commands.h"
#include "align/launch.h"
#include "align/quantize_flags.h"
#include "align/token_input.h"
#include "common/error.h"
#include "common/hub_cache.h"
#include "common/jsonl.h"
#include "data/token_range.h"
#include "model/device_options.h"
#include "model/phi3_model.h"
#include "rollout/engine.h"
#include "rollout/stop_tokens.h"

namespace align {
namespace {

struct GenerateOptions {
  std::string model, prompt, input, output;
  std::string dtype = "auto", device = "auto";
  QuantizeFlags quantize;
  bool chat = false;
  std::string chat_format = "auto";
  int64_t num_samples = 1, max_new_tokens = 256, top_k = 0, kv_budget_tokens = 1 << 16;
  double temperature = 1.0, top_p = 1.0, min_p = 0.0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
};

void run_generate(const GenerateOptions& opt) {
  if (opt.num_samples < 1) throw InputError("--num-samples must be at least 1");
  if (opt.max_new_tokens < 1) throw InputError("--max-new-tokens must be at least 1");
  if (opt.temperature < 0) throw InputError("--temperature must be >= 0 (0 = greedy)");
  if (opt.top_p <= 0 || opt.top_p > 1) throw InputError("--top-p must be in (0, 1]");
  if (opt.min_p < 0 || opt.min_p > 1) throw InputError("--min-p must be in [0, 1]");
  if (opt.top_k < 0) throw InputError("--top-k must be >= 0 (0 = off)");
  const torch::Device device = parse_device(opt.device);
  const std::string model_dir = resolve_model_dir(opt.model, "--model").dir;
  const Phi3Model model = Phi3Model::load(model_dir, parse_dtype_flag(opt.dtype, device), device,
                                          quantize_options(opt.quantize));
  const std::optional<Tokenizer> tokenizer = load_optional_tokenizer(model_dir);
  if (!tokenizer && (!opt.prompt.empty() || !opt.stop.empty())) {
    throw InputError(opt.model +
                     " has no tokenizer: --prompt and --stop need one (give "
                     "--input lines with \"token_ids\")");
  }
  const LazyChatFormat format(model_dir, tokenizer ? &*tokenizer : nullptr,
                              parse_enum<ChatFormatKind>(opt.chat_format, "--chat-format"),
                              "--chat-format");

  std::vector<TokenInput> prompts;
  if (!opt.input.empty()) {
    for_each_jsonl(opt.input, [&](const nlohmann::json& record, const JsonlLocation&) {
      prompts.push_back(read_token_input(record, tokenizer ? &*tokenizer : nullptr, opt.chat,
                                         model.config().vocab_size, format));
      if (prompts.back().ids.empty()) throw InputError("the prompt is empty");
    });
  } else {
    prompts.push_back(text_token_input(opt.prompt, *tokenizer, opt.chat, format));
    check_token_ids(prompts.back().ids, model.config().vocab_size, "--prompt");
  }
  // A prompt plus --max-new-tokens must fit the model's positions and the KV budget.
  const int64_t positions = model.config().max_position_embeddings;
  const int64_t room = std::min(positions, opt.kv_budget_tokens);
  for (size_t p = 0; p < prompts.size(); ++p) {
    const auto n = static_cast<int64_t>(prompts[p].ids.size());
    if (n + opt.max_new_tokens > room) {
      throw InputError((opt.input.empty() ? std::string("--prompt")
                                          : opt.input + " prompt " + std::to_string(p + 1)) +
                       ": " + std::to_string(n) + " tokens plus --max-new-tokens " +
                       std::to_string(opt.max_new_tokens) + " exceed " +
                       (room == positions ? "max_position_embeddings " : "--kv-budget-tokens ") +
                       std::to_string(room));
    }
  }

  std::vector<GenerationRequest> requests;
  for (size_t p = 0; p < prompts.size(); ++p) {
    GenerationRequest r;
    r.prompt = prompts[p].ids;
    r.num_samples = opt.num_samples;
    r.max_new_tokens = opt.max_new_tokens;
    r.stop_token_ids = default_stop_token_ids(format.used() ? &format.get() : nullptr,
                                              tokenizer ? &*tokenizer : nullptr, model.config());
    r.stop_strings = opt.stop;
    r.sampling.temperature = opt.temperature;
    r.sampling.top_k = opt.top_k;
    r.sampling.top_p = opt.top_p;
    r.sampling.min_p = opt.min_p;
    // Sample s of prompt p draws with seed + p * num_samples + s: every sample its own stream.
    r.sampling.seed = opt.seed + static_cast<uint64_t>(p * opt.num_samples);
    requests.push_back(std::move(r));
  }
  EngineOptions engine_opt;
  engine_opt.kv_budget_tokens = opt.kv_budget_tokens;
  Engine engine(model, tokenizer ? &*tokenizer : nullptr, engine_opt);
  const auto results = engine.generate(requests);

  JsonlWriter writer(opt.output);
  for (size_t p = 0; p < results.size(); ++p) {
    for (size_t s = 0; s < results[p].size(); ++s) {
      const GeneratedSample& g = results[p][s];
      writer.write({{"prompt_index", p},
                    {"sample_index", s},
                    {"token_ids", g.tokens},
                    {"text", tokenizer ? nlohmann::json(g.text) : nlohmann::json(nullptr)},
                    {"logprobs", g.logprobs},
                    {"finish_reason", g.finish_reason}});
    }
  }
  writer.commit();
}

}  // namespace

void add_generate_command(CLI::App& app) {
  auto opt = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Sample completions with the batched engine");
  cmd->add_option("--model", opt->model, "Hugging Face model directory")->required();
  auto* prompt = cmd->add_option("--prompt", opt->prompt, "Prompt text");
  auto* input = cmd->add_option("--input", opt->input,
                                "JSONL; each line has \"token_ids\", \"text\" or \"messages\"");
  prompt->excludes(input);
  cmd->add_flag("--chat", opt->chat, "Wrap prompt text as a user turn in the chat format");
  cmd->add_option("--chat-format", opt->chat_format,
                  "auto (the model's chat template), phi4 or phi3 (docs/chat_formats.md)");
  cmd->add_option("--num-samples", opt->num_samples, "Samples per prompt (share its prefill)");
  cmd->add_option("--max-new-tokens", opt->max_new_tokens, "Tokens to generate at most");
  cmd->add_option("--temperature", opt->temperature, "0 = greedy");
  cmd->add_option("--top-p", opt->top_p, "Nucleus sampling threshold (1 = off)");
  cmd->add_option("--top-k", opt->top_k, "Keep the k most likely tokens (0 = off)");
  cmd->add_option("--min-p", opt->min_p, "Keep tokens with p >= min_p * p_max (0 = off)");
  cmd->add_option("--seed", opt->seed, "Base seed (sample s of prompt p: seed + p*N + s)");
  cmd->add_option("--stop", opt->stop, "Stop string (repeatable)");
  cmd->add_option("--output", opt->output, "JSONL output (written atomically)")->required();
  cmd->add_option("--dtype", opt->dtype, "auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16");
  cmd->add_option("--device", opt->device, "auto, cpu or cuda");
  add_quantize_flags(cmd, opt->quantize);
  cmd->add_option("--kv-budget-tokens", opt->kv_budget_tokens, "KV cache budget in tokens");
  cmd->callback([opt, prompt, input] {
    require_single_process("generate");
    if (prompt->count() + input->count() != 1) {
      throw InputError("generate: give exactly one of --prompt or --input");
    }
    run_generate(*opt);
  });
}

}  // namespace align
