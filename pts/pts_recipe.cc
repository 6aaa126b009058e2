#include "pts/pts_recipe.h"

#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

#include "common/error.h"
#include "common/output_dir.h"
#include "common/progress.h"
#include "eval/query_run.h"
#include "pts/pts_output.h"
#include "pts/pts_records.h"
#include "rollout/engine.h"

namespace align {

namespace {

// One batch's output lines (by file), query count and totals: what rank 0 appends.
struct BatchOutput {
  std::map<std::string, std::vector<nlohmann::json>> lines;
  int64_t queries = 0;
  nlohmann::json totals;

  nlohmann::json to_json() const {
    return {{"lines", lines}, {"queries", queries}, {"totals", totals}};
  }
  static BatchOutput from_json(const nlohmann::json& j) {
    BatchOutput b;
    b.lines = j.at("lines").get<std::map<std::string, std::vector<nlohmann::json>>>();
    b.queries = j.at("queries").get<int64_t>();
    b.totals = j.at("totals");
    return b;
  }
};

// Searches one batch of queries (the batch_index-th, starting at query `first`).
BatchOutput run_batch(int64_t batch_index, const std::vector<Query>& batch, const Oracle& oracle,
                      const PtsOptions& options, Engine& engine, const Tokenizer& tokenizer,
                      int64_t first) {
  const RolloutFn rollout = [&](const std::vector<GenerationRequest>& r) {
    return engine.generate(r);
  };
  const DecodeFn decode = [&](const std::vector<TokenId>& ids) {
    return completion_text(tokenizer, ids);
  };
  const auto batch_start = std::chrono::steady_clock::now();
  engine.reset_stats();
  const std::vector<QueryResult> results = search_pivots(batch, oracle, options, rollout, decode);
  const double batch_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - batch_start).count();

  BatchOutput out;
  int64_t kept = 0, pivots = 0, pairs = 0, rollouts = 0, tokens = 0;
  for (size_t i = 0; i < results.size(); ++i) {
    const QueryResult& r = results[i];
    for (auto& l : pivot_records(batch[i], r, tokenizer))
      out.lines["pivots.jsonl"].push_back(std::move(l));
    for (auto& l : pair_records(batch[i], r, tokenizer))
      out.lines["pairs.jsonl"].push_back(std::move(l));
    for (auto& l : completion_records(r, tokenizer))
      out.lines["completions.jsonl"].push_back(std::move(l));
    out.lines["queries.jsonl"].push_back(query_record(r));
    kept += r.kept ? 1 : 0;
    pivots += static_cast<int64_t>(r.pivots.size());
    pairs += static_cast<int64_t>(r.pairs.size());
    rollouts += r.rollouts;
    tokens += r.tokens_generated;
  }
  const int64_t end = first + static_cast<int64_t>(batch.size());
  out.lines["metrics.jsonl"].push_back(
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
  out.queries = static_cast<int64_t>(batch.size());
  out.totals = {{"queries", out.queries}, {"kept", kept},         {"pivots", pivots},
                {"pairs", pairs},         {"rollouts", rollouts}, {"tokens_generated", tokens}};
  return out;
}

}  // namespace

PtsRunSummary run_pts(const PtsConfig& config, const std::string& source,
                      const std::shared_ptr<ProcessGroup>& group_ptr) {
  const std::shared_ptr<ProcessGroup> single = group_ptr ? nullptr : ProcessGroup::single();
  ProcessGroup& group = group_ptr ? *group_ptr : *single;
  // Setup: oracle and data first (cheap, and where most mistakes are), then the model.
  const QueryRun q =
      open_query_run(config.model, config.data, config.oracle, config.sampling.max_new_tokens,
                     config.rollout.kv_budget_tokens, source);
  const std::vector<Query>& queries = q.queries;
  const PtsOptions options = config.search_options(q.stop_token_ids);
  Engine engine(q.model, &q.tokenizer, config.rollout);
  std::optional<PtsOutput> output;  // rank 0 only

  // Loop: one batch of queries at a time, each batch committed whole, in order, by rank 0.
  // Batches left to do go round-robin over the ranks; the others hand theirs to rank 0 through
  // the store. Rank 0 publishes where the run starts (or why it cannot) before anyone works.
  PtsRunSummary summary;
  const auto start = std::chrono::steady_clock::now();
  const int64_t total = static_cast<int64_t>(queries.size());
  int64_t done = 0;
  if (group.is_main()) {
    try {
      output.emplace(config.output.dir, to_json(config), file_fingerprint(config.data.path));
    } catch (const std::exception& e) {
      group.store_set("pts/start", std::string("error: ") + e.what());
      throw;
    }
    done = output->queries_done();
    group.store_set("pts/start", std::to_string(done));
  } else {
    const std::string start_at = group.store_get("pts/start");
    if (start_at.rfind("error: ", 0) == 0) {
      throw InputError("rank 0 could not open " + config.output.dir + ": " + start_at.substr(7));
    }
    done = std::stoll(start_at);
  }
  const int64_t per_batch = config.pts.queries_per_batch;
  const int64_t first_batch = done / per_batch;
  const int64_t num_batches = (total + per_batch - 1) / per_batch;
  auto batch_key = [](int64_t b) { return "pts/batch/" + std::to_string(b); };
  Progress bar("pts queries", total, group.is_main(), done);
  for (int64_t b = first_batch; b < num_batches; ++b) {
    const int owner = static_cast<int>((b - first_batch) % group.world_size());
    if (owner != group.rank() && !group.is_main()) continue;
    BatchOutput out;
    if (owner == group.rank()) {
      const int64_t lo = b * per_batch, hi = std::min(total, lo + per_batch);
      out = run_batch(b, std::vector<Query>(queries.begin() + lo, queries.begin() + hi), *q.oracle,
                      options, engine, q.tokenizer, lo);
      if (!group.is_main()) {
        group.store_set(batch_key(b), out.to_json().dump());
        continue;
      }
    } else {
      out = BatchOutput::from_json(nlohmann::json::parse(group.store_get(batch_key(b))));
    }
    output->append_batch(out.lines, out.queries, out.totals);
    bar.advance(out.queries);
    const nlohmann::json& so_far = output->totals();
    const nlohmann::json& batch_metrics = out.lines.at("metrics.jsonl").back();
    char status[200];
    std::snprintf(status, sizeof status,
                  "batch %lld/%lld, kept %lld, pivots %lld, pairs %lld, tokens/s %.0f",
                  static_cast<long long>(b + 1), static_cast<long long>(num_batches),
                  static_cast<long long>(so_far.value("kept", int64_t{0})),
                  static_cast<long long>(so_far.value("pivots", int64_t{0})),
                  static_cast<long long>(so_far.value("pairs", int64_t{0})),
                  batch_metrics.value("tokens_per_s", 0.0));
    bar.set_status(status);
    bar.log();
  }
  if (!group.is_main()) {
    summary.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return summary;
  }

  // Summary over the whole run (earlier invocations included).
  const nlohmann::json& t = output->totals();
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
