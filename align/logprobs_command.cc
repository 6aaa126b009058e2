// align logprobs --model DIR --input FILE.jsonl --output FILE.jsonl [--dtype] [--device] [--chat]
//   [--quantize nf4 [--double-quant B]]
// Teacher-forced scoring: each output line has "token_ids" and "logprobs", where logprobs[i] is
// log p(token i | tokens before i) under the model and logprobs[0] is null (nothing precedes it).
#include "align/commands.h"
#include "align/quantize_flags.h"
#include "align/token_input.h"
#include "common/error.h"
#include "common/hub_cache.h"
#include "common/jsonl.h"
#include "common/progress.h"
#include "model/device_options.h"
#include "model/logprobs.h"
#include "model/phi3_model.h"

namespace align {
namespace {

struct LogprobsOptions {
  std::string model, input, output;
  std::string dtype = "auto", device = "auto";
  QuantizeFlags quantize;
  bool chat = false;
  std::string chat_format = "auto";
};

void run_logprobs(const LogprobsOptions& opt) {
  const torch::Device device = parse_device(opt.device);
  const torch::ScalarType dtype = parse_dtype_flag(opt.dtype, device);
  const std::string model_dir = resolve_model_dir(opt.model, "--model").dir;
  const Phi3Model model = Phi3Model::load(model_dir, dtype, device, quantize_options(opt.quantize));
  const std::optional<Tokenizer> tokenizer = load_optional_tokenizer(model_dir);
  const int64_t vocab = model.config().vocab_size;
  const LazyChatFormat format(model_dir, tokenizer ? &*tokenizer : nullptr,
                              parse_enum<ChatFormatKind>(opt.chat_format, "--chat-format"),
                              "--chat-format");

  // Read and check every record first: a bad line fails before any compute and before any output.
  std::vector<TokenInput> inputs;
  for_each_jsonl(opt.input, [&](const nlohmann::json& record, const JsonlLocation&) {
    TokenInput in =
        read_token_input(record, tokenizer ? &*tokenizer : nullptr, opt.chat, vocab, format);
    if (in.ids.empty()) throw InputError("the sequence is empty");
    if (static_cast<int64_t>(in.ids.size()) > model.config().max_position_embeddings) {
      throw InputError("the sequence has " + std::to_string(in.ids.size()) +
                       " tokens, more than max_position_embeddings = " +
                       std::to_string(model.config().max_position_embeddings));
    }
    inputs.push_back(std::move(in));
  });

  JsonlWriter writer(opt.output);
  Progress progress("logprobs", static_cast<int64_t>(inputs.size()), true, 0, 15.0);
  torch::NoGradGuard no_grad;
  for (const TokenInput& in : inputs) {
    std::vector<int64_t> ids(in.ids.begin(), in.ids.end());
    torch::Tensor tokens = torch::tensor(ids, torch::kInt64).view({1, -1}).to(device);
    torch::Tensor lp = token_logprobs(model, tokens).to(torch::kCPU).view({-1});
    nlohmann::json values = nlohmann::json::array({nullptr});
    const float* data = lp.data_ptr<float>();
    for (int64_t i = 1; i < lp.size(0); ++i)
      values.push_back(data[i]);
    nlohmann::json out = {{"token_ids", in.ids}, {"logprobs", values}};
    if (in.assistant_mask) out["assistant_mask"] = *in.assistant_mask;
    writer.write(out);
    progress.advance();
  }
  writer.commit();
}

}  // namespace

void add_logprobs_command(CLI::App& app) {
  auto opt = std::make_shared<LogprobsOptions>();
  CLI::App* cmd = app.add_subcommand("logprobs", "Per-token log-probabilities of sequences");
  cmd->add_option("--model", opt->model, "Hugging Face model directory")->required();
  cmd->add_option("--input", opt->input,
                  "JSONL; each line has \"token_ids\", \"text\" or \"messages\"")
      ->required();
  cmd->add_option("--output", opt->output, "JSONL output (written atomically)")->required();
  cmd->add_option("--dtype", opt->dtype, "auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16");
  cmd->add_option("--device", opt->device, "auto, cpu or cuda");
  add_quantize_flags(cmd, opt->quantize);
  cmd->add_flag("--chat", opt->chat, "Wrap \"text\" as a user turn in the chat format");
  cmd->add_option("--chat-format", opt->chat_format,
                  "auto (the model's chat template), phi4 or phi3 (docs/chat_formats.md)");
  cmd->callback([opt] { run_logprobs(*opt); });
}

}  // namespace align
