// The engine's scheduler (rollout/engine.h describes the policy): the queues of one generate()
// call (waiting requests, prefills in progress, live samples, longrope samples at the switch),
// admission against max_batch and the free pages, prefix reuse and eviction. Each step it turns
// the queues into a plan (the rows of one model call); after the call it forks the prompts that
// finished prefilling into their samples, names the rows to sample, and appends the drawn tokens,
// finishing samples that stopped. Host work per step is proportional to the rows (plus the
// requests admitted), not to the tokens in context.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/sampling_op.h"
#include "model/config.h"
#include "rollout/engine.h"
#include "rollout/paged_forward.h"
#include "rollout/paged_kv_cache.h"
#include "rollout/prefix_cache.h"
#include "rollout/stop_checker.h"

namespace align {

// The pages a request may take in the worst case (its prompt and every sample grown to
// max_new_tokens, longrope re-runs included): more than the cache holds can never run.
int64_t worst_case_pages(const PagedKvCache& cache, const ModelConfig& config,
                         const GenerationRequest& r);

// One step's model call.
struct StepPlan {
  std::vector<PagedRow> rows;  // the live samples' decode rows first, then prefill chunks
  int64_t decode_rows = 0;
  int64_t prefill_tokens = 0;     // prompt tokens in the chunks
  int64_t switch_tokens = 0;      // longrope re-run tokens in the chunks
  std::vector<size_t> completed;  // prefills whose last chunk is in this step (queue indices)
};

// The rows to sample after the call: row `logit_row` of its logits for live sample `live`.
struct SampleRows {
  std::vector<int64_t> logit_rows;
  std::vector<SamplingParams> params;  // the request's, seed + sample index
  std::vector<int64_t> steps;          // tokens the sample has so far (the draw's counter)
  std::vector<size_t> live;
};

class Scheduler {
 public:
  // `requests` and `results` (sized [request][sample]) outlive the scheduler; requests are
  // valid (Engine::generate checks them) and those listed in `waiting` have samples to draw.
  Scheduler(const ModelConfig& config, const EngineOptions& options, PagedKvCache& cache,
            PrefixCache& prefixes, const std::vector<GenerationRequest>& requests,
            std::vector<std::vector<GeneratedSample>>& results, std::vector<size_t> waiting);
  // Sequences still held (an exception ended the call) go back to the cache.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  bool finished() const;
  // Moves samples at the longrope switch to their re-runs, admits what fits, and plans the step.
  StepPlan plan();
  // After the model ran `plan`: forks its completed prompts into their samples and returns the
  // rows to sample (decode rows first, then the new samples' first draws).
  SampleRows fork_completed(const StepPlan& plan);
  // Appends token j (with its log-prob) to sample rows.live[j]; finished samples leave the batch
  // and become cached prefixes. Returns the tokens appended.
  int64_t append(const SampleRows& rows, const int64_t* tokens, const float* logprobs,
                 const StopChecker& stops);

  int64_t reused_prefix_tokens() const { return reused_prefix_tokens_; }
  int64_t live_samples() const { return static_cast<int64_t>(live_.size()); }

 private:
  // Tokens being prefilled: a request's prompt, or (longrope) a sample's whole sequence re-run
  // with the long factors when it crosses original_max_position_embeddings (docs/longrope.md).
  struct Prefill {
    size_t request = 0;
    int64_t seq = -1;
    int64_t reserve = 0;          // worst-case pages: the prefill's, plus its samples' once forked
    std::vector<TokenId> tokens;  // what the sequence holds once prefilled
    int64_t sample = -1;          // -1: the prompt, forked into every sample; else that sample
  };
  // A sample being decoded: its last sampled token is fed next.
  struct Live {
    size_t request = 0;
    int64_t index = 0;  // sample index within the request
    int64_t seq = -1;
    int64_t reserve = 0;
    bool done = false;
  };

  int64_t outstanding() const;
  int64_t batch_rows() const;
  bool wait_for_prefill(const std::vector<TokenId>& tokens, const PrefixCache::Match& match) const;
  void admit();
  void start_switches();

  const ModelConfig& config_;
  const EngineOptions& options_;
  PagedKvCache& cache_;
  PrefixCache& prefixes_;
  const std::vector<GenerationRequest>& requests_;
  std::vector<std::vector<GeneratedSample>>& results_;
  std::vector<size_t> waiting_;
  std::vector<Prefill> prefilling_;
  std::vector<Live> live_;
  std::vector<Live> switching_;  // longrope: samples at the switch waiting for a shared re-run
  int64_t reused_prefix_tokens_ = 0;
};

}  // namespace align
