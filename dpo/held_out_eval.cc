#include "dpo/held_out_eval.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <utility>

#include "common/atomic_file.h"
#include "common/error.h"
#include "eval/query_eval.h"
#include "eval/query_run.h"
#include "train/train_checkpoint.h"

namespace align {

HeldOutEval::HeldOutEval(const DpoEvalSection& section, const LazyChatFormat& chat,
                         const ModelConfig& config, const std::string& source, std::string recipe)
    : section_(section), recipe_(std::move(recipe)), tokenizer_(chat.tokenizer()) {
  oracle_ = make_oracle(section.oracle, source, "eval.oracle");
  QueryDataSection data;
  data.path = section.queries;
  data.system_prompt = section.system_prompt;
  data.limit = section.limit;
  QueryData queries =
      read_query_data(data, *oracle_, tokenizer_, chat, config, section.sampling.max_new_tokens,
                      section.rollout.kv_budget_tokens, "eval.queries");
  queries_ = std::move(queries.queries);
  if (queries_.empty()) throw InputError(source + ": eval.queries: " + data.path + " is empty");
  stop_token_ids_ = std::move(queries.stop_token_ids);
  if (section.metric == "pass@1") return;
  std::string known = "pass@1";
  for (const OracleRate& rate : oracle_->rates()) {
    if (rate.key == section.metric) {
      higher_is_better_ = rate.higher_is_better;
      return;
    }
    known += ", " + rate.key;
  }
  throw InputError(source + ": eval.metric: " + section.metric + " is not one of " + known +
                   " (the " + oracle_->name() + " oracle's)");
}

BestStep HeldOutEval::new_record() const {
  return BestStep(section_.metric, higher_is_better_, section_.max_clipped_ratio);
}

StepScore HeldOutEval::run(const Phi3Model& model, int64_t step, const std::string& output_dir,
                           bool main_rank, nlohmann::json& record) const {
  const auto start = std::chrono::steady_clock::now();
  QueryEvalOptions options;
  options.sampling = section_.sampling;
  options.rollout = section_.rollout;
  options.eval.k = {1};
  options.eval.confidence = section_.confidence;
  options.progress_label = recipe_ + " eval (step " + std::to_string(step) + ") tokens";
  options.show_progress = main_rank;
  QueryEval eval;
  {
    torch::NoGradGuard no_grad;
    eval = evaluate_queries(model, tokenizer_, *oracle_, queries_, stop_token_ids_, options);
  }
  eval.summary.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (main_rank) {
    const std::string dir = output_dir + "/evals/" + checkpoint_dir_name(step);
    std::filesystem::create_directories(dir);
    write_query_eval(dir, eval);
  }
  StepScore score{step, 0, 0, 1, eval.summary.clipped_ratio};
  MeanInterval value = eval.summary.pass.front().value;
  if (section_.metric != "pass@1") {
    bool found = false;
    for (const auto& [rate, summary] : eval.summary.rates) {
      if (rate.key != section_.metric) continue;
      value = summary.value;
      found = true;
    }
    if (!found) {
      throw InputError("eval.metric: " + section_.metric + " covers none of the queries in " +
                       section_.queries + " (the " + oracle_->name() +
                       " oracle counts it only on some items)");
    }
  }
  score.value = value.mean;
  score.low = value.low;
  score.high = value.high;
  const std::string key = "eval_" + section_.metric;
  record[key] = score.value;
  record[key + "_low"] = score.low;
  record[key + "_high"] = score.high;
  record["eval_completions/mean_length"] = eval.summary.mean_tokens;
  record["eval_completions/clipped_ratio"] = eval.summary.clipped_ratio;
  return score;
}

namespace {

const char* const kStateKey = "held_out_evals";

// "dpo: step 20 held-out pass@1 0.840 [0.800, 0.880], clipped_ratio 0.000; best: step 20"; a
// step over eval.max_clipped_ratio is said to be passed over, and why.
void report_eval(const std::string& recipe, const BestStep& evals, const StepScore& s) {
  char buffer[200];
  std::snprintf(buffer, sizeof buffer,
                "%s: step %lld held-out %s %.3f [%.3f, %.3f], clipped_ratio %.3f", recipe.c_str(),
                static_cast<long long>(s.step), evals.metric().c_str(), s.value, s.low, s.high,
                s.clipped_ratio);
  std::string line = buffer;
  if (!evals.eligible(s)) {
    std::snprintf(buffer, sizeof buffer,
                  " > eval.max_clipped_ratio %.3g: not eligible as best (its samples hit "
                  "max_new_tokens without a stop token)",
                  evals.max_clipped_ratio());
    line += buffer;
  }
  std::cerr << line << "; best: step " << evals.best()->step << "\n";
}

// OUTPUT/best.json (train/best_step.h's summary), rewritten after every held-out eval.
void write_best(const BestStep& evals, const std::string& output_dir, int64_t last_step,
                bool kept) {
  write_file_atomic(output_dir + "/best.json", evals.summary(last_step, kept).dump(2) + "\n");
}

}  // namespace

HeldOutEvals::HeldOutEvals(const DpoEvalSection& section, int64_t training_eval_every,
                           const LazyChatFormat& chat, const ModelConfig& config,
                           const std::string& source, TrainRun& run)
    : section_(section),
      every_(section.every > 0 ? section.every : training_eval_every),
      run_(run),
      eval_(section, chat, config, source, run.name()),
      evals_(eval_.new_record()) {
  const nlohmann::json& state = run.recipe_state();
  if (state.is_object() && state.contains(kStateKey))
    evals_.restore(state.at(kStateKey), run.output_dir() + "/checkpoints");
  evals_.truncate_after(run.step());
  if (!evals_.history().empty()) run.set_keep_step(evals_.best()->step);
}

void HeldOutEvals::keep(const StepScore& s) {
  evals_.add(s);
  run_.set_keep_step(evals_.best()->step);  // the previous best's checkpoint may go
  nlohmann::json state =
      run_.recipe_state().is_object() ? run_.recipe_state() : nlohmann::json::object();
  state[kStateKey] = evals_.to_json();
  run_.set_recipe_state(std::move(state));
  if (run_.main_rank()) {
    report_eval(run_.name(), evals_, s);
    write_best(evals_, run_.output_dir(), run_.step(), false);
  }
}

void HeldOutEvals::start(const Phi3Model& model, const BatcherState& data) {
  if (!evals_.history().empty()) return;
  nlohmann::json record = {{"step", run_.step()}};
  keep(eval_.run(model, run_.step(), run_.output_dir(), run_.main_rank(), record));
  run_.log_record(record);
  run_.save_checkpoint(data);
}

bool HeldOutEvals::due() const {
  return run_.done() || (every_ > 0 && run_.step() % every_ == 0);
}

void HeldOutEvals::evaluate(const Phi3Model& model, nlohmann::json& record) {
  keep(eval_.run(model, run_.step(), run_.output_dir(), run_.main_rank(), record));
}

std::string HeldOutEvals::finish() {
  const StepScore best = *evals_.best();
  const bool kept = section_.keep_best;
  if (kept && best.step != run_.step()) run_.load_step_weights(best.step);
  if (run_.main_rank()) {
    write_best(evals_, run_.output_dir(), run_.step(), kept);
    std::cerr << run_.name() << ": " << evals_.verdict(run_.step(), kept) << "\n";
  }
  const int64_t result = kept ? best.step : run_.step();
  return result == run_.step() ? "" : "the weights of step " + std::to_string(result);
}

}  // namespace align
