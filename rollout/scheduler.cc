#include "rollout/scheduler.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/error.h"

namespace align {
namespace {

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

}  // namespace

int64_t worst_case_pages(const PagedKvCache& cache, const ModelConfig& config,
                         const GenerationRequest& r) {
  return prompt_pages(cache, static_cast<int64_t>(r.prompt.size()), 0) +
         r.num_samples * sample_pages(cache, config, r);
}

Scheduler::Scheduler(const ModelConfig& config, const EngineOptions& options, PagedKvCache& cache,
                     PrefixCache& prefixes, const std::vector<GenerationRequest>& requests,
                     std::vector<std::vector<GeneratedSample>>& results,
                     std::vector<size_t> waiting)
    : config_(config),
      options_(options),
      cache_(cache),
      prefixes_(prefixes),
      requests_(requests),
      results_(results),
      waiting_(std::move(waiting)) {}

Scheduler::~Scheduler() {
  for (const auto& p : prefilling_)
    if (cache_.contains(p.seq)) cache_.release(p.seq);
  for (const auto* samples : {&live_, &switching_})
    for (const auto& s : *samples)
      if (!s.done && cache_.contains(s.seq)) cache_.release(s.seq);
}

bool Scheduler::finished() const {
  return waiting_.empty() && prefilling_.empty() && live_.empty() && switching_.empty();
}

int64_t Scheduler::outstanding() const {
  int64_t n = 0;
  for (const auto& p : prefilling_)
    n += p.reserve - cache_.allocated(p.seq);
  for (const auto* samples : {&live_, &switching_})
    for (const auto& s : *samples)
      n += s.reserve - cache_.allocated(s.seq);
  return n;
}

int64_t Scheduler::batch_rows() const {
  int64_t n = static_cast<int64_t>(live_.size() + switching_.size());
  for (const auto& p : prefilling_)
    n += p.sample < 0 ? requests_[p.request].num_samples : 1;
  return n;
}

// Whether a prefill of `tokens` should wait for one in progress (keys of the same factor set)
// that shares at least a page more than `match` covers, to fork it once it is done.
bool Scheduler::wait_for_prefill(const std::vector<TokenId>& tokens,
                                 const PrefixCache::Match& match) const {
  const int64_t cap = static_cast<int64_t>(tokens.size()) - 1;
  for (const auto& p : prefilling_) {
    if (cache_.long_rope(p.seq) != match.long_rope) continue;
    if (std::min(common_prefix(tokens, p.tokens), cap) >= match.length + cache_.page_size()) {
      return true;
    }
  }
  return false;
}

// Admits waiting requests in order while they fit (see engine.h).
void Scheduler::admit() {
  for (auto it = waiting_.begin(); it != waiting_.end();) {
    const GenerationRequest& r = requests_[*it];
    const int64_t P = static_cast<int64_t>(r.prompt.size());
    if (batch_rows() + r.num_samples > options_.max_batch) return;
    const bool long_rope = config_.uses_long_factors(P);  // the prefill's factors (transformers')
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
      return prompt_pages(cache_, P, match.length) +
             r.num_samples * sample_pages(cache_, config_, r);
    };
    while (cache_.free_pages() - outstanding() < need()) {
      if (prefixes_.evict_one(match.entry)) continue;
      if (match.entry < 0) break;
      prefixes_.erase(match.entry);
      match = PrefixCache::Match();
      match.long_rope = long_rope;
    }
    if (cache_.free_pages() - outstanding() < need()) {
      if (live_.empty() && prefilling_.empty()) {
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
    reused_prefix_tokens_ += match.length;
    prefilling_.push_back(std::move(p));
    it = waiting_.erase(it);
  }
}

// Longrope: a sample whose next fed token passes original_max_position_embeddings re-runs its
// whole sequence with the long factors, as transformers' Phi3ForCausalLM drops its cache there
// (docs/longrope.md). The re-run forks the longest long-factor cached prefix; samples sharing
// more with a re-run in progress (siblings: the prompt) wait for it. Its short-factor sequence
// is released: the sample's reserve covers the re-run (sample_pages).
void Scheduler::start_switches() {
  for (auto it = switching_.begin(); it != switching_.end();) {
    const GenerationRequest& r = requests_[it->request];
    const auto& generated = results_[it->request][static_cast<size_t>(it->index)].tokens;
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
    p.reserve = switch_pages(cache_, config_, r, match.length);
    p.tokens = std::move(tokens);
    reused_prefix_tokens_ += match.length;
    prefilling_.push_back(std::move(p));
    it = switching_.erase(it);
  }
}

StepPlan Scheduler::plan() {
  // Samples at the longrope switch leave the decode batch for a long-factor re-run.
  for (auto it = live_.begin(); it != live_.end();) {
    if (!cache_.long_rope(it->seq) && config_.uses_long_factors(cache_.length(it->seq) + 1)) {
      switching_.push_back(*it);
      it = live_.erase(it);
    } else {
      ++it;
    }
  }
  start_switches();
  admit();
  if (prefilling_.empty() && live_.empty()) {
    throw Error("Engine::generate: nothing could be admitted");  // admit() throws first
  }

  StepPlan plan;
  plan.rows.reserve(live_.size() + prefilling_.size());
  for (const auto& s : live_) {
    const TokenId last = results_[s.request][static_cast<size_t>(s.index)].tokens.back();
    plan.rows.push_back(PagedRow{s.seq, {last}, true});
  }
  plan.decode_rows = static_cast<int64_t>(live_.size());
  int64_t budget = options_.prefill_chunk;
  for (size_t i = 0; i < prefilling_.size() && budget > 0; ++i) {
    const auto& tokens = prefilling_[i].tokens;
    const int64_t done = cache_.length(prefilling_[i].seq);
    const int64_t n = std::min(static_cast<int64_t>(tokens.size()) - done, budget);
    const bool last = done + n == static_cast<int64_t>(tokens.size());
    plan.rows.push_back(
        PagedRow{prefilling_[i].seq,
                 std::vector<TokenId>(tokens.begin() + done, tokens.begin() + done + n), last});
    if (last) plan.completed.push_back(i);
    budget -= n;
    (prefilling_[i].sample < 0 ? plan.prefill_tokens : plan.switch_tokens) += n;
  }
  return plan;
}

SampleRows Scheduler::fork_completed(const StepPlan& plan) {
  SampleRows rows;
  auto add_row = [&](int64_t logit_row, size_t target) {
    const Live& s = live_[target];
    SamplingParams p = requests_[s.request].sampling;
    p.seed += static_cast<uint64_t>(s.index);
    rows.logit_rows.push_back(logit_row);
    rows.params.push_back(p);
    rows.steps.push_back(
        static_cast<int64_t>(results_[s.request][static_cast<size_t>(s.index)].tokens.size()));
    rows.live.push_back(target);
  };
  const auto decoding = static_cast<size_t>(plan.decode_rows);
  for (size_t i = 0; i < decoding; ++i)
    add_row(static_cast<int64_t>(i), i);
  for (size_t j = 0; j < plan.completed.size(); ++j) {
    Prefill& p = prefilling_[plan.completed[j]];
    const GenerationRequest& r = requests_[p.request];
    const int64_t first = p.sample < 0 ? 0 : p.sample;
    const int64_t end = p.sample < 0 ? r.num_samples : p.sample + 1;
    for (int64_t s = first; s < end; ++s) {
      Live child;
      child.request = p.request;
      child.index = s;
      child.seq = cache_.fork(p.seq);
      child.reserve = p.sample < 0 ? sample_pages(cache_, config_, r)
                                   : growth_pages(cache_, r, static_cast<int64_t>(p.tokens.size()));
      live_.push_back(child);
      add_row(static_cast<int64_t>(decoding + j), live_.size() - 1);
    }
    if (options_.reuse_prefixes) {
      prefixes_.insert(std::move(p.tokens), p.seq);
    } else {
      cache_.release(p.seq);
    }
  }
  for (auto it = plan.completed.rbegin(); it != plan.completed.rend(); ++it)
    prefilling_.erase(prefilling_.begin() + static_cast<std::ptrdiff_t>(*it));
  return rows;
}

int64_t Scheduler::append(const SampleRows& rows, const int64_t* tokens, const float* logprobs,
                          const StopChecker& stops) {
  for (size_t j = 0; j < rows.live.size(); ++j) {
    Live& s = live_[rows.live[j]];
    const GenerationRequest& r = requests_[s.request];
    GeneratedSample& out = results_[s.request][static_cast<size_t>(s.index)];
    out.tokens.push_back(static_cast<TokenId>(tokens[j]));
    out.logprobs.push_back(logprobs[j]);
    out.finish_reason = stops.finish_reason(r, out.tokens);
    if (out.finish_reason.empty()) continue;
    out.text = stops.text(r, out.tokens);
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
  live_.erase(std::remove_if(live_.begin(), live_.end(), [](const Live& s) { return s.done; }),
              live_.end());
  return static_cast<int64_t>(rows.live.size());
}

}  // namespace align
