#include "rollout/engine.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "common/error.h"
#include "rollout/paged_step.h"

namespace align {
namespace {

// Tokens being prefilled: a request's prompt, or (longrope) a sample's whole sequence re-run with
// the long factors when it crosses original_max_position_embeddings (docs/longrope.md).
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

// Worst-case pages a request takes from the free list: its prompt sequence (forked from a cached
// prefix of `reused` tokens) plus each sample growing to prompt + max_new_tokens - 1 cached tokens
// (the last sampled token is never fed), copy-on-write of the shared partial page included.
int64_t prompt_pages(const PagedKvCache& cache, int64_t prompt, int64_t reused) {
  return cache.pages_for(prompt) - reused / cache.page_size();
}
// Pages of a sample that grows from `held` tokens (whose full pages it shares) to its end.
int64_t growth_pages(const PagedKvCache& cache, const GenerationRequest& r, int64_t held) {
  const int64_t prompt = static_cast<int64_t>(r.prompt.size());
  return cache.pages_for(prompt + std::max<int64_t>(r.max_new_tokens - 1, 0)) -
         held / cache.page_size();
}
// Longrope: whether a request's samples cross original_max_position_embeddings while decoding
// (prompt within it, the last fed token past it), so each re-runs its sequence with the long
// factors at the switch.
bool crosses_switch(const ModelConfig& c, const GenerationRequest& r) {
  const int64_t prompt = static_cast<int64_t>(r.prompt.size());
  return !c.uses_long_factors(prompt) && c.uses_long_factors(prompt + r.max_new_tokens - 1);
}
// The re-run's worst case: the switch's original_max_position_embeddings + 1 tokens (nothing
// reused) plus the growth past them.
int64_t switch_pages(const PagedKvCache& cache, const ModelConfig& c, const GenerationRequest& r,
                     int64_t reused) {
  const int64_t length = c.original_max_position_embeddings + 1;
  return cache.pages_for(length) - reused / cache.page_size() + growth_pages(cache, r, length);
}
// The reserve of one sample of `r` from its fork off the prompt: its growth, or a crossing
// sample's worst case after the switch (its short-factor pages are freed at the switch).
int64_t sample_pages(const PagedKvCache& cache, const ModelConfig& c, const GenerationRequest& r) {
  const int64_t prompt = static_cast<int64_t>(r.prompt.size());
  return crosses_switch(c, r) ? switch_pages(cache, c, r, 0) : growth_pages(cache, r, prompt);
}

// Token ids the tokenizer can decode (a model's vocabulary may be padded past the tokenizer's).
std::string decode_text(const Tokenizer& tokenizer, const std::vector<TokenId>& tokens,
                        size_t from = 0) {
  std::vector<TokenId> ids;
  for (size_t i = from; i < tokens.size(); ++i) {
    if (tokens[i] < tokenizer.vocab_size()) ids.push_back(tokens[i]);
  }
  return tokenizer.decode(ids, /*skip_special=*/true);
}

// Whether the newest token completed a stop string (every earlier token was checked already, so
// only a window of the last tokens, at least one byte each, needs decoding).
bool hits_stop_string(const Tokenizer& tokenizer, const GenerationRequest& r,
                      const std::vector<TokenId>& tokens) {
  size_t longest = 0;
  for (const auto& s : r.stop_strings)
    longest = std::max(longest, s.size());
  const size_t window = longest + 8;
  const size_t from = tokens.size() > window ? tokens.size() - window : 0;
  const std::string text = decode_text(tokenizer, tokens, from);
  for (const auto& s : r.stop_strings) {
    if (text.find(s) != std::string::npos) return true;
  }
  return false;
}

// Text cut before the earliest stop string.
std::string cut_at_stop_string(std::string text, const std::vector<std::string>& stops) {
  size_t cut = std::string::npos;
  for (const auto& s : stops)
    cut = std::min(cut, text.find(s));
  if (cut != std::string::npos) text.resize(cut);
  return text;
}

}  // namespace

Engine::Engine(const Phi3Model& model, const Tokenizer* tokenizer, EngineOptions options)
    : model_(model),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      cache_(model.config(),
             options_.page_size > 0
                 ? std::max<int64_t>(1, options_.kv_budget_tokens / options_.page_size)
                 : 1,
             std::max<int64_t>(1, options_.page_size), model.dtype(), model.device()),
      prefixes_(cache_, static_cast<size_t>(std::max<int64_t>(0, options_.max_cached_prefixes))) {
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
    for (TokenId t : r.prompt) {
      if (t < 0 || t >= c.vocab_size) {
        throw InputError(where + "prompt token " + std::to_string(t) +
                         " outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
      }
    }
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
    const int64_t worst = prompt_pages(cache_, P, 0) + r.num_samples * sample_pages(cache_, c, r);
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

  std::vector<Prefill> prefilling;
  std::vector<Live> live;
  std::vector<Live> switching;  // longrope: samples at the switch waiting for a shared re-run
  // Sequences still held when this call ends (an exception) go back to the cache.
  struct Cleanup {
    PagedKvCache& cache;
    std::vector<Prefill>& prefilling;
    std::vector<Live>& live;
    std::vector<Live>& switching;
    ~Cleanup() {
      for (const auto& p : prefilling)
        if (cache.contains(p.seq)) cache.release(p.seq);
      for (const auto* samples : {&live, &switching})
        for (const auto& s : *samples)
          if (!s.done && cache.contains(s.seq)) cache.release(s.seq);
    }
  } cleanup{cache_, prefilling, live, switching};

  auto outstanding = [&] {
    int64_t n = 0;
    for (const auto& p : prefilling)
      n += p.reserve - cache_.allocated(p.seq);
    for (const auto* samples : {&live, &switching})
      for (const auto& s : *samples)
        n += s.reserve - cache_.allocated(s.seq);
    return n;
  };
  auto batch_rows = [&] {
    int64_t n = static_cast<int64_t>(live.size() + switching.size());
    for (const auto& p : prefilling)
      n += p.sample < 0 ? requests[p.request].num_samples : 1;
    return n;
  };
  // Whether a prefill of `tokens` should wait for one in progress (keys of the same factor set)
  // that shares at least a page more than `match` covers, to fork it once it is done.
  auto wait_for_prefill = [&](const std::vector<TokenId>& tokens, const PrefixCache::Match& match) {
    const int64_t cap = static_cast<int64_t>(tokens.size()) - 1;
    for (const auto& p : prefilling) {
      if (cache_.long_rope(p.seq) != match.long_rope) continue;
      if (std::min(common_prefix(tokens, p.tokens), cap) >= match.length + ps) return true;
    }
    return false;
  };

  // Admits waiting requests in order while they fit (see engine.h).
  auto admit = [&] {
    for (auto it = waiting.begin(); it != waiting.end();) {
      const GenerationRequest& r = requests[*it];
      const int64_t P = static_cast<int64_t>(r.prompt.size());
      if (batch_rows() + r.num_samples > options_.max_batch) return;
      const bool long_rope = c.uses_long_factors(P);  // the prefill's factors (transformers')
      PrefixCache::Match match;
      match.long_rope = long_rope;
      if (options_.reuse_prefixes) {
        match = prefixes_.find(r.prompt, P - 1, long_rope);
        if (wait_for_prefill(r.prompt, match)) {
          ++it;
          continue;
        }
      }
      auto need = [&] {
        return prompt_pages(cache_, P, match.length) + r.num_samples * sample_pages(cache_, c, r);
      };
      while (cache_.free_pages() - outstanding() < need()) {
        if (prefixes_.evict_one(match.entry)) continue;
        if (match.entry < 0) break;
        prefixes_.erase(match.entry);
        match = PrefixCache::Match();
        match.long_rope = long_rope;
      }
      if (cache_.free_pages() - outstanding() < need()) {
        if (live.empty() && prefilling.empty()) {
          throw Error("Engine::generate: request " + std::to_string(*it) +
                      " does not fit in an idle KV cache");
        }
        return;  // waits for pages
      }
      Prefill p;
      p.request = *it;
      p.seq = prefixes_.fork(match);
      p.reserve = need();
      p.tokens = r.prompt;
      stats_.reused_prefix_tokens += match.length;
      prefilling.push_back(std::move(p));
      it = waiting.erase(it);
    }
  };

  // Longrope: a sample whose next fed token passes original_max_position_embeddings re-runs its
  // whole sequence with the long factors, as transformers' Phi3ForCausalLM drops its cache there
  // (docs/longrope.md). The re-run forks the longest long-factor cached prefix; samples sharing
  // more with a re-run in progress (siblings: the prompt) wait for it. Its short-factor sequence
  // is released: the sample's reserve covers the re-run (sample_pages).
  auto start_switches = [&] {
    for (auto it = switching.begin(); it != switching.end();) {
      const GenerationRequest& r = requests[it->request];
      const auto& generated = results[it->request][static_cast<size_t>(it->index)].tokens;
      std::vector<TokenId> tokens = r.prompt;
      tokens.insert(tokens.end(), generated.begin(), generated.end());
      const int64_t L = static_cast<int64_t>(tokens.size());
      PrefixCache::Match match;
      match.long_rope = true;
      if (options_.reuse_prefixes) {
        match = prefixes_.find(tokens, L - 1, true);
        if (wait_for_prefill(tokens, match)) {
          ++it;
          continue;
        }
      }
      cache_.release(it->seq);
      Prefill p;
      p.request = it->request;
      p.sample = it->index;
      p.seq = prefixes_.fork(match);
      p.reserve = switch_pages(cache_, c, r, match.length);
      p.tokens = std::move(tokens);
      stats_.reused_prefix_tokens += match.length;
      prefilling.push_back(std::move(p));
      it = switching.erase(it);
    }
  };

  int64_t generated = 0;
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
  };
  while (!waiting.empty() || !prefilling.empty() || !live.empty() || !switching.empty()) {
    // Host time of this step: all of it but the model's layers and the sampler.
    struct StepClock {
      Clock::time_point start = Clock::now();
      double compute = 0;
      double& host;
      ~StepClock() {
        host += std::chrono::duration<double>(Clock::now() - start).count() - compute;
      }
    } clock{Clock::now(), 0.0, stats_.host_seconds};
    // Samples at the longrope switch leave the decode batch for a long-factor re-run.
    for (auto it = live.begin(); it != live.end();) {
      if (!cache_.long_rope(it->seq) && c.uses_long_factors(cache_.length(it->seq) + 1)) {
        switching.push_back(*it);
        it = live.erase(it);
      } else {
        ++it;
      }
    }
    start_switches();
    admit();
    if (prefilling.empty() && live.empty()) {
      throw Error("Engine::generate: nothing could be admitted");  // admit() throws first
    }

    // --- One step: decode rows, then prefill chunks.
    std::vector<PagedRow> rows;
    for (const auto& s : live)
      rows.push_back(
          PagedRow{s.seq, {results[s.request][static_cast<size_t>(s.index)].tokens.back()}, true});
    std::vector<size_t> completed;  // indices into prefilling whose prompt ends this step
    int64_t budget = options_.prefill_chunk, prefill_tokens = 0;
    int64_t switch_tokens = 0;
    for (size_t i = 0; i < prefilling.size() && budget > 0; ++i) {
      const auto& tokens = prefilling[i].tokens;
      const int64_t done = cache_.length(prefilling[i].seq);
      const int64_t n = std::min(static_cast<int64_t>(tokens.size()) - done, budget);
      const bool last = done + n == static_cast<int64_t>(tokens.size());
      rows.push_back(
          PagedRow{prefilling[i].seq,
                   std::vector<TokenId>(tokens.begin() + done, tokens.begin() + done + n), last});
      if (last) completed.push_back(i);
      budget -= n;
      (prefilling[i].sample < 0 ? prefill_tokens : switch_tokens) += n;
    }
    const PagedStep step = plan_paged_step(model_, cache_, rows);
    const auto run_start = Clock::now();
    torch::Tensor logits = run_paged_step(model_, cache_, step);  // [rows with logits, V] fp32
    clock.compute += seconds_since(run_start);
    ++stats_.steps;
    stats_.prefill_tokens += prefill_tokens;
    stats_.switch_tokens += switch_tokens;
    stats_.decode_tokens += static_cast<int64_t>(live.size());
    stats_.peak_pages = std::max(stats_.peak_pages, cache_.used_pages());

    // --- Sample: decode rows first (logits rows 0..live-1), then every completed prompt's forks.
    std::vector<int64_t> logit_rows, steps;
    std::vector<SamplingParams> params;
    std::vector<size_t> targets;  // live index of each sampled row
    auto add_row = [&](int64_t logit_row, size_t target) {
      const Live& s = live[target];
      SamplingParams p = requests[s.request].sampling;
      p.seed += static_cast<uint64_t>(s.index);
      logit_rows.push_back(logit_row);
      params.push_back(p);
      steps.push_back(
          static_cast<int64_t>(results[s.request][static_cast<size_t>(s.index)].tokens.size()));
      targets.push_back(target);
    };
    const size_t decoding = live.size();
    for (size_t i = 0; i < decoding; ++i)
      add_row(static_cast<int64_t>(i), i);
    for (size_t j = 0; j < completed.size(); ++j) {
      Prefill& p = prefilling[completed[j]];
      const GenerationRequest& r = requests[p.request];
      const int64_t first = p.sample < 0 ? 0 : p.sample;
      const int64_t end = p.sample < 0 ? r.num_samples : p.sample + 1;
      for (int64_t s = first; s < end; ++s) {
        Live child;
        child.request = p.request;
        child.index = s;
        child.seq = cache_.fork(p.seq);
        child.reserve = p.sample < 0
                            ? sample_pages(cache_, c, r)
                            : growth_pages(cache_, r, static_cast<int64_t>(p.tokens.size()));
        live.push_back(child);
        add_row(static_cast<int64_t>(decoding + j), live.size() - 1);
      }
      if (options_.reuse_prefixes) {
        prefixes_.insert(std::move(p.tokens), p.seq);
      } else {
        cache_.release(p.seq);
      }
    }
    for (auto it = completed.rbegin(); it != completed.rend(); ++it)
      prefilling.erase(prefilling.begin() + static_cast<std::ptrdiff_t>(*it));

    if (logit_rows.empty()) continue;  // only prompt chunks that do not end their prompt
    const auto sample_start = Clock::now();
    const SampleResult drawn =
        sample(logits.index_select(0, at::tensor(logit_rows, at::kLong).to(logits.device())),
               params, steps);
    const auto tokens = drawn.tokens.to(at::kCPU);
    const auto logprobs = drawn.logprobs.to(at::kCPU, at::kFloat);
    clock.compute += seconds_since(sample_start);
    const auto* token_ptr = tokens.data_ptr<int64_t>();
    const auto* logprob_ptr = logprobs.data_ptr<float>();

    // --- Append, then finish samples that stopped or reached max_new_tokens.
    for (size_t j = 0; j < targets.size(); ++j) {
      Live& s = live[targets[j]];
      const GenerationRequest& r = requests[s.request];
      GeneratedSample& out = results[s.request][static_cast<size_t>(s.index)];
      const auto token = static_cast<TokenId>(token_ptr[j]);
      out.tokens.push_back(token);
      out.logprobs.push_back(logprob_ptr[j]);
      ++generated;
      bool stop = std::find(r.stop_token_ids.begin(), r.stop_token_ids.end(), token) !=
                  r.stop_token_ids.end();
      if (!stop && !r.stop_strings.empty()) stop = hits_stop_string(*tokenizer_, r, out.tokens);
      if (!stop && static_cast<int64_t>(out.tokens.size()) < r.max_new_tokens) continue;
      out.finish_reason = stop ? "stop" : "length";
      if (tokenizer_) {
        out.text = cut_at_stop_string(decode_text(*tokenizer_, out.tokens), r.stop_strings);
      }
      s.done = true;
      if (options_.reuse_prefixes) {
        // The cache holds the prompt and every generated token but the last (never fed).
        std::vector<TokenId> cached = r.prompt;
        cached.insert(cached.end(), out.tokens.begin(), out.tokens.end() - 1);
        prefixes_.insert(std::move(cached), s.seq);
      } else {
        cache_.release(s.seq);
      }
    }
    live.erase(std::remove_if(live.begin(), live.end(), [](const Live& s) { return s.done; }),
               live.end());
    if (options_.on_progress) options_.on_progress(generated);
  }
  return results;
}

}  // namespace align
