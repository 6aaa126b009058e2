#include "eval/query_run.h"

#include <algorithm>

#include "common/hub_cache.h"
#include "data/chat_template.h"
#include "model/device_options.h"
#include "rollout/stop_tokens.h"

namespace align {

QueryData read_query_data(const QueryDataSection& data, const Oracle& oracle,
                          const Tokenizer& tokenizer, const LazyChatFormat& chat,
                          const ModelConfig& config, int64_t max_new_tokens,
                          int64_t kv_budget_tokens, const std::string& key) {
  QuerySetOptions options;
  options.system_prompt = data.system_prompt;
  options.limit = data.limit;
  options.vocab_size = config.vocab_size;
  options.max_new_tokens = max_new_tokens;
  const int64_t positions = config.max_position_embeddings;
  options.max_tokens = std::min(positions, kv_budget_tokens);
  options.max_tokens_reason = positions <= kv_budget_tokens
                                  ? "max_position_embeddings " + std::to_string(positions)
                                  : "rollout.kv_budget_tokens " + std::to_string(kv_budget_tokens);
  QueryData out;
  out.queries = read_queries(data.path, tokenizer, chat, oracle, options, key);
  out.stop_token_ids =
      default_stop_token_ids(chat.used() ? &chat.get() : nullptr, &tokenizer, config);
  return out;
}

QueryRun open_query_run(const QueryModelSection& model, const QueryDataSection& data,
                        const nlohmann::json& oracle, int64_t max_new_tokens,
                        int64_t kv_budget_tokens, const std::string& source) {
  std::unique_ptr<Oracle> grader = make_oracle(oracle, source);
  const std::string dir = resolve_model_dir(model.path, source + ": model.path").dir;
  const torch::Device device = resolve_device(model.device, "model.device");
  Tokenizer tokenizer = Tokenizer::load(dir);
  const LazyChatFormat chat(dir, &tokenizer, model.chat_format, "model.chat_format");
  Phi3Model loaded = Phi3Model::load(dir, resolve_dtype(model.dtype, device), device,
                                     quantize_options(model.quantize, model.double_quant));
  QueryData queries = read_query_data(data, *grader, tokenizer, chat, loaded.config(),
                                      max_new_tokens, kv_budget_tokens);
  return QueryRun{std::move(grader), std::move(tokenizer), std::move(loaded),
                  std::move(queries.queries), std::move(queries.stop_token_ids)};
}

}  // namespace align
