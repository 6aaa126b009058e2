// The batched generation engine: continuous batching over a paged KV cache (rollout/
// paged_kv_cache.h), prompts prefilled once and forked into their samples, cached prefixes reused.
//
// generate() is a short loop over four parts: the scheduler (rollout/scheduler.h: queues,
// admission, prefix reuse, eviction -> the step's rows), the model runner (rollout/model_runner.h:
// the step's plan and the model's layers over the cache), the sampler (kernels/sampling_op.h) and
// the stop checker (rollout/stop_checker.h).
//
// Scheduling, one model call per step:
//   - every live sample feeds its last sampled token (decode, 1 token per row); requests being
//     prefilled add chunks of their prompts (at most prefill_chunk prompt tokens per step in all);
//   - a request is admitted (FIFO) when its samples fit in max_batch and the free pages cover its
//     worst case (prompt pages + every sample growing to max_new_tokens, copy-on-write included),
//     so admitted work never runs out of pages; otherwise it waits until finished samples free
//     theirs (least recently used cached prefixes are evicted first). A request that cannot fit
//     even in an empty cache throws InputError;
//   - when a prompt's prefill ends, its sequence is forked num_samples times (shared pages) and
//     sample s draws its first token with seed sampling.seed + s, step 0;
//   - finished samples leave the batch at once; waiting requests join the next step.
// Prefix reuse (reuse_prefixes): prompts, and finished samples (prompt + generated tokens whose
// keys were computed), stay in a prefix cache across generate() calls. A new prompt forks the
// longest cached prefix (at most prompt length - 1 tokens: its last token is always run to get
// logits) and prefills only the rest. A request whose prompt shares a longer prefix with a prompt
// still being prefilled waits for that prefill (so N nested PTS prefixes submitted together prefill
// the shared part once). Reused keys were computed in another call, so results equal a run without
// reuse up to float rounding (~1e-6 on the log-probs); tokens can differ only where two choices are
// that close.
//
// Draws depend only on (seed, step) and the row's logits (kernels/sampling_op.h), so a request
// gives the same samples alone or batched with others, up to rounding: on the CPU, decode rows
// forked from one prefix read it together (rollout/paged_forward_attention.h), so which rows share
// a step changes the order of the fp32 sums (~1e-5 on log-probs).
//
// Longrope models (Phi-4-mini), as transformers' generate() runs one sequence alone
// (docs/longrope.md): a prompt longer than original_max_position_embeddings is prefilled with the
// long factors, a shorter one with the short factors; when a sample's next fed token passes the
// switch, its whole sequence (prompt + generated tokens) is re-run with the long factors (a
// prefill forking the longest long-factor cached prefix; its siblings, sharing the prompt, wait
// for the first re-run and fork it) and decoding continues on those keys. So every log-prob is
// that of a forward over the sequence so far: tokens drawn before the switch carry short-factor
// log-probs, where a teacher-forced forward over the whole longer sequence (align logprobs, the
// trainers) uses the long factors at every position. Cached prefixes are kept per factor set.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "data/token_id.h"
#include "data/tokenizer.h"
#include "kernels/sampling_op.h"
#include "model/phi3_model.h"
#include "rollout/paged_kv_cache.h"
#include "rollout/prefix_cache.h"

namespace align {

class ModelRunner;  // rollout/model_runner.h

struct GenerationRequest {
  std::vector<TokenId> prompt;            // token ids (chat template already applied by the caller)
  int64_t num_samples = 1;                // forks of the prefilled prompt sharing its pages
  int64_t max_new_tokens = 256;           // >= 0
  std::vector<TokenId> stop_token_ids;    // finish_reason "stop"; the stop token is kept in tokens
  std::vector<std::string> stop_strings;  // needs a tokenizer; "stop", text cut before the string
  SamplingParams sampling;                // sample s of the request uses seed sampling.seed + s
};

struct GeneratedSample {
  std::vector<TokenId> tokens;  // generated tokens (a stop token or the tokens completing a stop
                                // string included)
  std::vector<float> logprobs;  // [tokens] log p(token | prompt, previous tokens), unmodified model
  std::string finish_reason;    // "stop" or "length"
  std::string text;  // with a tokenizer: decoded tokens (special tokens skipped), cut before
                     // the first stop string
};

struct EngineOptions {
  int64_t page_size = 16;                    // tokens per KV page
  int64_t kv_budget_tokens = 1 << 16;        // pages = kv_budget_tokens / page_size
  int64_t max_batch = 256;                   // live samples (decode rows) at once
  int64_t prefill_chunk = 2048;              // prompt tokens per step, over all prefilling requests
  bool reuse_prefixes = true;                // keep prompts and finished samples as cached prefixes
  int64_t max_cached_prefixes = 1024;        // prefix-cache entries (LRU)
  std::function<void(int64_t)> on_progress;  // optional: tokens generated so far in this call
  // Decode steps of at most 256 rows run on persistent buffers, one set per bucket of 1, 2, 4,
  // ..., 256 rows, padded (rollout/decode_graphs.h). Costs the padding rows' compute; what
  // CUDA graphs need, and tested on the CPU for that.
  bool decode_buckets = false;
  // CUDA models: capture each bucket's decode step as a CUDA graph and replay it (implies
  // decode_buckets; prefill stays eager). InputError for a CPU model.
  bool cuda_graphs = false;
  // CUDA models: decode rows forked from one prompt read its shared pages once, in the
  // shared-prefix ("cascade") form of the decode kernel, as the CPU always does. Off until a GPU
  // measurement says it pays (scripts/gpu_check.sh runs the PTS-shaped load both ways).
  // Bucketed and captured decode steps never take it.
  bool cascade_decode = false;

  // The "rollout" section of align eval and align pts configs (common/config_fields.h).
  template <typename V>
  void fields(V& v) {
    v("page_size", page_size, "tokens per KV-cache page");
    v("kv_budget_tokens", kv_budget_tokens, "KV-cache size in tokens (pages = this / page_size)");
    v("max_batch", max_batch, "samples decoded together at most");
    v("prefill_chunk", prefill_chunk, "prompt tokens per step, over all prefilling requests");
    v("max_cached_prefixes", max_cached_prefixes, "prefix-cache entries kept (LRU)");
    v("cuda_graphs", cuda_graphs, "capture the decode step per batch bucket as a CUDA graph");
    v("cascade_decode", cascade_decode,
      "CUDA: decode forks of one prompt in the shared-prefix form");
  }
};

class Engine {
 public:
  // `model` (and `tokenizer`, may be null without stop strings) must outlive the engine.
  Engine(const Phi3Model& model, const Tokenizer* tokenizer, EngineOptions options);
  ~Engine();

  // All requests, continuously batched; returns results[request][sample]. Throws InputError for a
  // malformed request (empty prompt, token outside the vocabulary, stop strings without a
  // tokenizer, too large for the KV budget).
  std::vector<std::vector<GeneratedSample>> generate(
      const std::vector<GenerationRequest>& requests);

  struct Stats {
    int64_t prefill_tokens = 0;        // prompt tokens run through the model
    int64_t reused_prefix_tokens = 0;  // prompt tokens taken from cached prefixes instead
    int64_t decode_tokens = 0;         // decode rows run
    int64_t switch_tokens = 0;  // longrope: tokens re-run with the long factors at the switch
    int64_t steps = 0;          // model calls
    int64_t peak_pages = 0;     // most pages in use at once (cached prefixes included)
    // Wall-clock seconds of the steps outside the model's layers and the sampler: scheduling,
    // admission, the step's plan (rollout/paged_step.h), stop checks. On CUDA the layers are
    // timed as enqueued and the
    // sampler's copy of the tokens to the host waits for the device, so device time is not counted.
    double host_seconds = 0;
  };
  const Stats& stats() const { return stats_; }
  // Decode steps run on the bucket buffers, and CUDA graphs captured, over the engine's life.
  int64_t bucketed_steps() const;
  int64_t graphs_captured() const;
  void reset_stats() { stats_ = Stats(); }
  // The engine's paged KV cache (pages in use, the page table), for tests and benches.
  const PagedKvCache& kv_cache() const { return cache_; }

 private:
  const Phi3Model& model_;
  const Tokenizer* tokenizer_;
  EngineOptions options_;
  PagedKvCache cache_;
  PrefixCache prefixes_;                 // after cache_: releases its sequences first
  std::unique_ptr<ModelRunner> runner_;  // after cache_; its buffers live as long as the engine
  Stats stats_;
};

}  // namespace align
