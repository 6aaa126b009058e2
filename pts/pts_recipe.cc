#include "pts/pts_recipe.h"

#include <chrono>
#include <cstdio>

#include "common/progress.h"
#include "model/device_options.h"
#include "model/phi3_model.h"
#include "pts/oracle.h"
#include "pts/pts_dataset.h"
#include "pts/pts_output.h"
#include "pts/pts_records.h"
#include "rollout/engine.h"
#include "rollout/stop_tokens.h"

namespace align {

PtsRunSummary run_pts(const PtsConfig& config, const std::string& source) {
  // Setup: oracle and data first (cheap, and where most mistakes are), then the model.
  const std::unique_ptr<Oracle> oracle = make_oracle(config.oracle, source);
  const torch::Device device = parse_device(config.model.device, "model.device");
  const Tokenizer tokenizer = Tokenizer::load(config.model.path);
  const Phi3Model model = Phi3Model::load(
      config.model.path, parse_dtype_flag(config.model.dtype, device, "model.dtype"), device);
  PtsDatasetOptions data_options;
  data_options.system_prompt = config.data.system_prompt;
  data_options.limit = config.data.limit;
  data_options.vocab_size = model.config().vocab_size;
  const std::vector<PtsQuery> queries =
      read_pts_queries(config.data.path, tokenizer, *oracle, data_options);
  PtsOptions options = config.search;
  options.stop_token_ids = default_stop_token_ids(&tokenizer, model.config());
  PtsOutput output(config.output_dir, to_json(config));
  Engine engine(model, &tokenizer, config.rollout);
  const RolloutFn rollout = [&](const std::vector<GenerationRequest>& r) {
    return engine.generate(r);
  };
  const DecodeFn decode = [&](const std::vector<TokenId>& ids) {
    return completion_text(tokenizer, ids);
  };

  // Loop: one batch of queries at a time, each batch committed whole.
  PtsRunSummary summary;
  const auto start = std::chrono::steady_clock::now();
  const int64_t total = static_cast<int64_t>(queries.size());
  int64_t done = output.queries_done();
  ProgressBar bar("pts queries", total);
  bar.advance(done);
  while (done < total) {
    const int64_t end = std::min(total, done + config.queries_per_batch);
    const std::vector<PtsQuery> batch(queries.begin() + done, queries.begin() + end);
    const auto batch_start = std::chrono::steady_clock::now();
    engine.reset_stats();
    const std::vector<QueryResult> results =
        search_pivots(batch, *oracle, options, rollout, decode);
    const double batch_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - batch_start).count();

    std::map<std::string, std::vector<nlohmann::json>> lines;
    int64_t kept = 0, pivots = 0, pairs = 0, rollouts = 0, tokens = 0;
    for (size_t i = 0; i < results.size(); ++i) {
      const QueryResult& r = results[i];
      for (auto& l : pivot_records(batch[i], r, tokenizer))
        lines["pivots.jsonl"].push_back(std::move(l));
      for (auto& l : pair_records(batch[i], r, tokenizer))
        lines["pairs.jsonl"].push_back(std::move(l));
      for (auto& l : completion_records(r, tokenizer))
        lines["completions.jsonl"].push_back(std::move(l));
      lines["queries.jsonl"].push_back(query_record(r));
      kept += r.kept ? 1 : 0;
      pivots += static_cast<int64_t>(r.pivots.size());
      pairs += static_cast<int64_t>(r.pairs.size());
      rollouts += r.rollouts;
      tokens += r.tokens_generated;
    }
    const int64_t batch_index = done / config.queries_per_batch;
    lines["metrics.jsonl"].push_back(
        {{"batch", batch_index},
         {"queries_done", end},
         {"kept", kept},
         {"pivots", pivots},
         {"pairs", pairs},
         {"rollouts", rollouts},
         {"tokens_generated", tokens},
         {"tokens_per_s", batch_seconds > 0 ? tokens / batch_seconds : 0.0},
         {"prefill_tokens", engine.stats().prefill_tokens},
         {"reused_prefix_tokens", engine.stats().reused_prefix_tokens},
         {"engine_steps", engine.stats().steps},
         {"elapsed_s", batch_seconds}});
    output.append_batch(lines, end - done,
                        {{"queries", end - done},
                         {"kept", kept},
                         {"pivots", pivots},
                         {"pairs", pairs},
                         {"rollouts", rollouts},
                         {"tokens_generated", tokens}});
    bar.advance(end - done);
    done = end;
  }

  // Summary over the whole run (earlier invocations included).
  const nlohmann::json& t = output.totals();
  auto total_of = [&](const char* key) { return t.value(key, int64_t{0}); };
  summary.queries = total_of("queries");
  summary.kept = total_of("kept");
  summary.pivots = total_of("pivots");
  summary.pairs = total_of("pairs");
  summary.rollouts = total_of("rollouts");
  summary.tokens_generated = total_of("tokens_generated");
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

}  // namespace align
