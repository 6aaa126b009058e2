#include "pts/eval_recipe.h"

#include <chrono>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "common/progress.h"
#include "common/seeding.h"
#include "model/device_options.h"
#include "model/phi3_model.h"
#include "pts/oracle.h"
#include "pts/pts_dataset.h"
#include "pts/pts_records.h"
#include "pts/refusal.h"
#include "rollout/engine.h"
#include "rollout/stop_tokens.h"

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
                      {"confidence", config.confidence},
                      {"oracle", s.oracle},
                      {"pass@k", pass},
                      {"mean_tokens", s.mean_tokens},
                      {"finish_reasons", s.finish_reasons},
                      {"seconds", s.seconds}};
  if (s.safety && s.safety->harmful.items > 0)
    j["refusal_rate_harmful"] = to_json(s.safety->harmful);
  if (s.safety && s.safety->benign.items > 0) j["over_refusal_benign"] = to_json(s.safety->benign);
  return j;
}

EvalSummary run_eval(const EvalConfig& config, const std::string& source) {
  // Setup: oracle and data first (cheap, and where most mistakes are), then the model.
  const auto start = std::chrono::steady_clock::now();
  const std::unique_ptr<Oracle> oracle = make_oracle(config.oracle, source);
  const torch::Device device = parse_device(config.model.device, "model.device");
  const Tokenizer tokenizer = Tokenizer::load(config.model.path);
  const Phi3Model model = Phi3Model::load(
      config.model.path, parse_dtype_flag(config.model.dtype, device, "model.dtype"), device);
  PtsDatasetOptions data_options;
  data_options.system_prompt = config.data.system_prompt;
  data_options.limit = config.data.limit;
  data_options.vocab_size = model.config().vocab_size;
  const std::vector<PtsQuery> items =
      read_pts_queries(config.data.path, tokenizer, *oracle, data_options);
  std::error_code error;
  std::filesystem::create_directories(config.output_dir, error);
  if (error)
    throw IoError("output.dir: cannot create " + config.output_dir + ": " + error.message());
  write_file_atomic(config.output_dir + "/config.json", to_json(config).dump(2) + "\n");

  // Generate: every item's samples in one engine call.
  std::vector<GenerationRequest> requests;
  const std::vector<TokenId> stop_ids = default_stop_token_ids(&tokenizer, model.config());
  for (const PtsQuery& item : items) {
    GenerationRequest r;
    r.prompt = item.prompt;
    r.num_samples = config.num_samples;
    r.max_new_tokens = config.max_new_tokens;
    r.stop_token_ids = stop_ids;
    r.sampling = config.sampling;
    r.sampling.seed = named_seed(config.sampling.seed, item.id);
    requests.push_back(std::move(r));
  }
  const int64_t n = config.num_samples;
  ProgressBar bar("eval tokens", static_cast<int64_t>(items.size()) * n * config.max_new_tokens);
  int64_t drawn = 0;
  EngineOptions engine_options = config.rollout;
  engine_options.on_progress = [&](int64_t tokens) {
    bar.advance(tokens - drawn);
    drawn = tokens;
  };
  Engine engine(model, &tokenizer, engine_options);
  const std::vector<std::vector<GeneratedSample>> samples = engine.generate(requests);

  // Grade and score, item by item.
  EvalSummary summary;
  summary.items = static_cast<int64_t>(items.size());
  summary.num_samples = n;
  summary.oracle = oracle->name();
  std::vector<std::vector<double>> per_k(config.k.size());
  const bool safety = summary.oracle == "safety";
  std::vector<bool> harmful;      // safety: each item's "harmful" field
  std::vector<int64_t> refusals;  // safety: each item's samples flagged by is_refusal
  int64_t tokens = 0;
  JsonlWriter results(config.output_dir + "/results.jsonl");
  for (size_t i = 0; i < items.size(); ++i) {
    std::vector<std::string> texts;
    for (const GeneratedSample& s : samples[i])
      texts.push_back(completion_text(tokenizer, s.tokens));
    const std::vector<bool> success = oracle->grade_all(texts, items[i].fields);
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
    for (size_t j = 0; j < config.k.size(); ++j) {
      const double p = pass_at_k(n, correct, config.k[j]);
      per_k[j].push_back(p);
      pass[std::to_string(config.k[j])] = p;
    }
    nlohmann::json line = {{"id", items[i].id},
                           {"n", n},
                           {"correct", correct},
                           {"pass@k", pass},
                           {"samples", records}};
    if (safety) {
      int64_t refused = 0;
      for (const std::string& text : texts)
        refused += is_refusal(text) ? 1 : 0;
      harmful.push_back(items[i].fields.at("harmful").get<bool>());
      refusals.push_back(refused);
      line["refusals"] = refused;
    }
    results.write(line);
  }
  results.commit();
  if (safety) summary.safety = safety_rates(harmful, refusals, n, config.confidence);

  for (size_t j = 0; j < config.k.size(); ++j) {
    EvalPassAtK p;
    p.k = config.k[j];
    p.value = mean_interval(per_k[j], config.confidence);
    if (p.k == 1 && n == 1) {
      // One Bernoulli trial per item: the items are the trials of a binomial.
      SuccessCount count;
      for (double v : per_k[j])
        count.add(v > 0.5);
      p.has_wilson = true;
      p.wilson = wilson_interval(count, normal_quantile_two_sided(config.confidence));
    }
    summary.pass.push_back(p);
  }
  summary.mean_tokens = static_cast<double>(tokens) / static_cast<double>(summary.items * n);
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  write_file_atomic(config.output_dir + "/summary.json", to_json(summary, config).dump(2) + "\n");
  return summary;
}

}  // namespace align
