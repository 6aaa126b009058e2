#include "eval/eval_recipe.h"

#include <chrono>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "common/output_dir.h"
#include "common/progress.h"
#include "common/seeding.h"
#include "eval/query_run.h"
#include "rollout/engine.h"

namespace align {

nlohmann::json to_json(const EvalSummary& s, const EvalConfig& config) {
  nlohmann::json pass = nlohmann::json::object();
  for (const EvalPassAtK& p : s.pass) {
    nlohmann::json& entry = pass[std::to_string(p.k)];
    entry = {{"mean", p.value.mean}, {"low", p.value.low}, {"high", p.value.high}};
    if (p.has_wilson) {
      entry["wilson_low"] = p.wilson.low;
      entry["wilson_high"] = p.wilson.high;
    }
  }
  nlohmann::json j = {{"items", s.items},
                      {"num_samples", s.num_samples},
                      {"confidence", config.eval.confidence},
                      {"oracle", s.oracle},
                      {"pass@k", pass},
                      {"mean_tokens", s.mean_tokens},
                      {"finish_reasons", s.finish_reasons},
                      {"seconds", s.seconds}};
  nlohmann::json rates = nlohmann::json::array();
  for (const auto& [rate, summary] : s.rates) {
    j[rate.key] = to_json(summary, rate.count);
    rates.push_back(
        {{"key", rate.key}, {"label", rate.label}, {"higher_is_better", rate.higher_is_better}});
  }
  if (!rates.empty()) j["oracle_rates"] = rates;
  return j;
}

EvalSummary run_eval(const EvalConfig& config, const std::string& source) {
  // Setup: oracle and data first (cheap, and where most mistakes are), then the model.
  const auto start = std::chrono::steady_clock::now();
  const QueryRun q =
      open_query_run(config.model, config.data, config.oracle, config.sampling.max_new_tokens,
                     config.rollout.kv_budget_tokens, source);
  const std::string& out = config.output.dir;
  create_output_dir(out, "output.dir");
  remove_stale_temp_files(out);
  write_file_atomic(out + "/config.json", to_json(config).dump(2) + "\n");

  // Generate: every item's samples in one engine call.
  const int64_t n = config.sampling.num_samples;
  std::vector<GenerationRequest> requests;
  for (const Query& item : q.queries) {
    GenerationRequest r;
    r.prompt = item.prompt;
    r.num_samples = n;
    r.max_new_tokens = config.sampling.max_new_tokens;
    r.stop_token_ids = q.stop_token_ids;
    r.sampling = config.sampling.params(named_seed(config.sampling.seed, item.id));
    requests.push_back(std::move(r));
  }
  const auto total = static_cast<int64_t>(q.queries.size()) * n * config.sampling.max_new_tokens;
  // Counts generated tokens up to the most there can be; a line every 15 s without a terminal.
  Progress bar("eval tokens", total, true, 0, 15.0);
  int64_t drawn = 0;
  EngineOptions engine_options = config.rollout;
  engine_options.on_progress = [&](int64_t tokens) {
    bar.advance(tokens - drawn);
    drawn = tokens;
  };
  Engine engine(q.model, &q.tokenizer, engine_options);
  const std::vector<std::vector<GeneratedSample>> samples = engine.generate(requests);
  bar.finish("every sample is done: the others stopped at a stop token before max_new_tokens");

  // Grade and score, item by item.
  EvalSummary summary;
  summary.items = static_cast<int64_t>(q.queries.size());
  summary.num_samples = n;
  summary.oracle = q.oracle->name();
  const std::vector<int64_t>& ks = config.eval.k;
  std::vector<std::vector<double>> per_k(ks.size());
  const std::vector<OracleRate> rates = q.oracle->rates();
  std::vector<std::vector<int64_t>> rate_counts(rates.size());  // per rate, its items' counts
  int64_t tokens = 0;
  JsonlWriter results(out + "/results.jsonl");
  for (size_t i = 0; i < q.queries.size(); ++i) {
    const Query& item = q.queries[i];
    std::vector<std::string> texts;
    for (const GeneratedSample& s : samples[i])
      texts.push_back(completion_text(q.tokenizer, s.tokens));
    const std::vector<bool> success = q.oracle->grade_all(texts, item.fields);
    int64_t correct = 0;
    nlohmann::json records = nlohmann::json::array();
    for (size_t s = 0; s < samples[i].size(); ++s) {
      correct += success[s] ? 1 : 0;
      tokens += static_cast<int64_t>(samples[i][s].tokens.size());
      ++summary.finish_reasons[samples[i][s].finish_reason];
      records.push_back({{"token_ids", samples[i][s].tokens},
                         {"text", texts[s]},
                         {"success", static_cast<bool>(success[s])},
                         {"finish_reason", samples[i][s].finish_reason}});
    }
    nlohmann::json pass = nlohmann::json::object();
    for (size_t j = 0; j < ks.size(); ++j) {
      const double p = pass_at_k(n, correct, ks[j]);
      per_k[j].push_back(p);
      pass[std::to_string(ks[j])] = p;
    }
    nlohmann::json line = {
        {"id", item.id}, {"n", n}, {"correct", correct}, {"pass@k", pass}, {"samples", records}};
    if (!rates.empty()) {
      const std::vector<int64_t> counts = q.oracle->rate_counts(texts, item.fields);
      for (size_t r = 0; r < rates.size() && r < counts.size(); ++r) {
        if (counts[r] < 0) continue;
        rate_counts[r].push_back(counts[r]);
        line[rates[r].count] = counts[r];
      }
    }
    results.write(line);
  }
  results.commit();
  for (size_t r = 0; r < rates.size(); ++r) {
    if (rate_counts[r].empty()) continue;
    summary.rates.emplace_back(rates[r], rate_summary(rate_counts[r], n, config.eval.confidence));
  }

  for (size_t j = 0; j < ks.size(); ++j) {
    EvalPassAtK p;
    p.k = ks[j];
    p.value = mean_interval(per_k[j], config.eval.confidence);
    if (p.k == 1 && n == 1) {
      // One Bernoulli trial per item: the items are the trials of a binomial.
      SuccessCount count;
      for (double v : per_k[j])
        count.add(v > 0.5);
      p.has_wilson = true;
      p.wilson = wilson_interval(count, normal_quantile_two_sided(config.eval.confidence));
    }
    summary.pass.push_back(p);
  }
  summary.mean_tokens = static_cast<double>(tokens) / static_cast<double>(summary.items * n);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_file_atomic(out + "/summary.json", to_json(summary, config).dump(2) + "\n");
  return summary;
}

}  // namespace align
