#include "rollout/engine.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "common/error.h"
#include "data/token_range.h"
#include "rollout/model_runner.h"
#include "rollout/scheduler.h"
#include "rollout/stop_checker.h"

namespace align {

Engine::Engine(const Phi3Model& model, const Tokenizer* tokenizer, EngineOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      cache_(model.config(),
             options_.page_size > 0
                 ? std::max<int64_t>(1, options_.kv_budget_tokens / options_.page_size)
                 : 1,
             std::max<int64_t>(1, options_.page_size), model.dtype(), model.device()),
      prefixes_(cache_, static_cast<size_t>(std::max<int64_t>(0, options_.max_cached_prefixes))),
      runner_(std::make_unique<ModelRunner>(
          model, cache_,
          ModelRunner::Options{options_.decode_buckets, options_.cuda_graphs,
                               options_.cascade_decode})) {
  const auto& o = options_;
  if (o.page_size <= 0 || o.kv_budget_tokens < o.page_size || o.max_batch <= 0 ||
      o.prefill_chunk <= 0) {
    throw InputError(
        "Engine: options need page_size > 0, kv_budget_tokens >= page_size, "
        "max_batch > 0 and prefill_chunk > 0; got page_size " +
        std::to_string(o.page_size) + ", kv_budget_tokens " + std::to_string(o.kv_budget_tokens) +
        ", max_batch " + std::to_string(o.max_batch) + ", prefill_chunk " +
        std::to_string(o.prefill_chunk));
  }
}

Engine::~Engine() = default;

int64_t Engine::bucketed_steps() const {
  return runner_->bucketed_steps();
}
int64_t Engine::graphs_captured() const {
  return runner_->graphs_captured();
}

std::vector<std::vector<GeneratedSample>> Engine::generate(
    const std::vector<GenerationRequest>& requests) {
  torch::NoGradGuard no_grad;
  const ModelConfig& c = model_.config();
  const int64_t ps = cache_.page_size();

  // --- Validate every request before any work.
  std::vector<std::vector<GeneratedSample>> results(requests.size());
  std::vector<size_t> waiting;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerationRequest& r = requests[i];
    const std::string where = "Engine::generate: request " + std::to_string(i) + ": ";
    const int64_t P = static_cast<int64_t>(r.prompt.size());
    if (P == 0) throw InputError(where + "empty prompt");
    check_token_ids(r.prompt, c.vocab_size, where + "prompt");
    if (r.num_samples < 0 || r.num_samples > options_.max_batch) {
      throw InputError(where + "num_samples " + std::to_string(r.num_samples) +
                       " outside [0, max_batch = " + std::to_string(options_.max_batch) + "]");
    }
    if (r.max_new_tokens < 0) throw InputError(where + "max_new_tokens must be >= 0");
    if (!r.stop_strings.empty() && !tokenizer_) {
      throw InputError(where + "stop_strings need an engine with a tokenizer");
    }
    for (const auto& s : r.stop_strings) {
      if (s.empty()) throw InputError(where + "empty stop string");
    }
    const int64_t worst = worst_case_pages(cache_, c, r);
    if (worst > cache_.num_pages()) {
      throw InputError(where + "needs up to " + std::to_string(worst) + " KV pages of " +
                       std::to_string(ps) + " tokens, the budget holds " +
                       std::to_string(cache_.num_pages()) +
                       "; raise kv_budget_tokens or lower num_samples / max_new_tokens");
    }
    results[i].resize(static_cast<size_t>(r.num_samples));
    if (r.num_samples == 0) continue;
    if (r.max_new_tokens == 0) {
      for (auto& s : results[i])
        s.finish_reason = "length";
      continue;
    }
    waiting.push_back(i);
  }

  Scheduler scheduler(c, options_, cache_, prefixes_, requests, results, std::move(waiting));
  ModelRunner& runner = *runner_;
  const StopChecker stops(tokenizer_);
  int64_t generated = 0;
  using Clock = std::chrono::steady_clock;
  while (!scheduler.finished()) {
    // Host time of the step: all of it but the model's layers and the sampler.
    const auto start = Clock::now();
    const double compute_before = runner.compute_seconds();
    const StepPlan plan = scheduler.plan();
    const torch::Tensor logits = runner.run(plan.rows);  // [rows with logits, V] fp32
    ++stats_.steps;
    stats_.prefill_tokens += plan.prefill_tokens;
    stats_.switch_tokens += plan.switch_tokens;
    stats_.decode_tokens += plan.decode_rows;
    stats_.peak_pages = std::max(stats_.peak_pages, cache_.used_pages());
    const SampleRows rows = scheduler.fork_completed(plan);
    if (!rows.live.empty()) {  // else only prompt chunks that do not end their prompt
      const ModelRunner::Draws draws = runner.sample(logits, rows);
      generated += scheduler.append(rows, draws.tokens.data(), draws.logprobs.data(), stops);
      if (options_.on_progress) options_.on_progress(generated);
    }
    stats_.host_seconds += std::chrono::duration<double>(Clock::now() - start).count() -
                           (runner.compute_seconds() - compute_before);
  }
  stats_.reused_prefix_tokens += scheduler.reused_prefix_tokens();
  return results;
}

}  // namespace align
