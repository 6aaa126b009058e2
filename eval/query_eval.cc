#include "eval/query_eval.h"

#include "common/atomic_file.h"
#include "common/jsonl.h"
#include "common/progress.h"
#include "common/seeding.h"
#include "rollout/engine.h"

namespace align {

double clipped_ratio(const std::map<std::string, int64_t>& finish_reasons) {
  int64_t all = 0, stopped = 0;
  for (const auto& [reason, count] : finish_reasons) {
    all += count;
    if (reason == "stop") stopped += count;
  }
  return all > 0 ? static_cast<double>(all - stopped) / static_cast<double>(all) : 0;
}

nlohmann::json to_json(const EvalSummary& s) {
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
                      {"confidence", s.confidence},
                      {"oracle", s.oracle},
                      {"pass@k", pass},
                      {"mean_tokens", s.mean_tokens},
                      {"finish_reasons", s.finish_reasons},
                      {"clipped_ratio", s.clipped_ratio},
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

QueryEval evaluate_queries(const Phi3Model& model, const Tokenizer& tokenizer, const Oracle& oracle,
                           const std::vector<Query>& queries,
                           const std::vector<TokenId>& stop_token_ids,
                           const QueryEvalOptions& options) {
  const EvalSamplingSection& sampling = options.sampling;
  // Generate: every item's samples in one engine call.
  const int64_t n = sampling.num_samples;
  std::vector<GenerationRequest> requests;
  for (const Query& item : queries) {
    GenerationRequest r;
    r.prompt = item.prompt;
    r.num_samples = n;
    r.max_new_tokens = sampling.max_new_tokens;
    r.stop_token_ids = stop_token_ids;
    r.sampling = sampling.params(named_seed(sampling.seed, item.id));
    requests.push_back(std::move(r));
  }
  const auto total = static_cast<int64_t>(queries.size()) * n * sampling.max_new_tokens;
  // Counts generated tokens up to the most there can be; a line every 15 s without a terminal.
  Progress bar(options.progress_label, total, options.show_progress, 0, 15.0);
  int64_t drawn = 0;
  EngineOptions engine_options = options.rollout;
  engine_options.on_progress = [&](int64_t tokens) {
    bar.advance(tokens - drawn);
    drawn = tokens;
  };
  Engine engine(model, &tokenizer, engine_options);
  const std::vector<std::vector<GeneratedSample>> samples = engine.generate(requests);
  bar.finish("every sample is done: the others stopped at a stop token before max_new_tokens");

  // Grade and score, item by item.
  QueryEval result;
  EvalSummary& summary = result.summary;
  summary.items = static_cast<int64_t>(queries.size());
  summary.num_samples = n;
  summary.confidence = options.eval.confidence;
  summary.oracle = oracle.name();
  const std::vector<int64_t>& ks = options.eval.k;
  std::vector<std::vector<double>> per_k(ks.size());
  const std::vector<OracleRate> rates = oracle.rates();
  std::vector<std::vector<int64_t>> rate_counts(rates.size());  // per rate, its items' counts
  int64_t tokens = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    const Query& item = queries[i];
    std::vector<std::string> texts;
    for (const GeneratedSample& s : samples[i])
      texts.push_back(completion_text(tokenizer, s.tokens));
    const std::vector<bool> success = oracle.grade_all(texts, item.fields);
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
      const std::vector<int64_t> counts = oracle.rate_counts(texts, item.fields);
      for (size_t r = 0; r < rates.size() && r < counts.size(); ++r) {
        if (counts[r] < 0) continue;
        rate_counts[r].push_back(counts[r]);
        line[rates[r].count] = counts[r];
      }
    }
    result.results.push_back(std::move(line));
  }
  for (size_t r = 0; r < rates.size(); ++r) {
    if (rate_counts[r].empty()) continue;
    summary.rates.emplace_back(rates[r], rate_summary(rate_counts[r], n, options.eval.confidence));
  }

  for (size_t j = 0; j < ks.size(); ++j) {
    EvalPassAtK p;
    p.k = ks[j];
    p.value = mean_interval(per_k[j], options.eval.confidence);
    if (p.k == 1 && n == 1) {
      // One Bernoulli trial per item: the items are the trials of a binomial.
      SuccessCount count;
      for (double v : per_k[j])
        count.add(v > 0.5);
      p.has_wilson = true;
      p.wilson = wilson_interval(count, normal_quantile_two_sided(options.eval.confidence));
    }
    summary.pass.push_back(p);
  }
  summary.mean_tokens =
      summary.items > 0 ? static_cast<double>(tokens) / static_cast<double>(summary.items * n) : 0;
  summary.clipped_ratio = clipped_ratio(summary.finish_reasons);
  return result;
}

void write_query_eval(const std::string& dir, const QueryEval& eval) {
  JsonlWriter results(dir + "/results.jsonl");
  for (const nlohmann::json& line : eval.results)
    results.write(line);
  results.commit();
  write_file_atomic(dir + "/summary.json", to_json(eval.summary).dump(2) + "\n");
}

}  // namespace align
