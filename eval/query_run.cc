#include "eval/query_run.h"

#include "model/device_options.h"
#include "rollout/stop_tokens.h"

namespace align {

QueryRun open_query_run(const ModelSection& model, const QueryDataSection& data,
                        const nlohmann::json& oracle, const std::string& source) {
  std::unique_ptr<Oracle> grader = make_oracle(oracle, source);
  const torch::Device device = resolve_device(model.device, "model.device");
  Tokenizer tokenizer = Tokenizer::load(model.path);
  Phi3Model loaded = Phi3Model::load(model.path, resolve_dtype(model.dtype, device), device);
  QuerySetOptions options;
  options.system_prompt = data.system_prompt;
  options.limit = data.limit;
  options.vocab_size = loaded.config().vocab_size;
  std::vector<Query> queries = read_queries(data.path, tokenizer, *grader, options);
  std::vector<TokenId> stop_ids = default_stop_token_ids(&tokenizer, loaded.config());
  return QueryRun{std::move(grader), std::move(tokenizer), std::move(loaded), std::move(queries),
                  std::move(stop_ids)};
}

}  // namespace align
