#include "rollout/engine.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <string>
#include <utility>

#include "common/error.h"
#include "rollout/paged_forward.h"

namespace align {
namespace {

// A request whose prompt is being prefilled.
struct Prefill {
  size_t request = 0;
  int64_t seq = -1;
  int64_t reserve = 0;  // worst-case pages: the prompt's, plus its samples' once forked
};

// A sample being decoded: its last sampled token is fed next.
struct Live {
  size_t request = 0;
  int64_t index = 0;  // sample index within the request
  int64_t seq = -1;
  int64_t reserve = 0;
  bool done = false;
};

int64_t common_prefix(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i])
    ++i;
  return static_cast<int64_t>(i);
}

// Worst-case pages a request takes from the free list: its prompt sequence (forked from a cached
// prefix of `reused` tokens) plus each sample growing to prompt + max_new_tokens - 1 cached tokens
// (the last sampled token is never fed), copy-on-write of the shared partial page included.
int64_t prompt_pages(const PagedKvCache& cache, int64_t prompt, int64_t reused) {
  return cache.pages_for(prompt) - reused / cache.page_size();
}
int64_t sample_pages(const PagedKvCache& cache, const GenerationRequest& r) {
  const int64_t prompt = static_cast<int64_t>(r.prompt.size());
  return cache.pages_for(prompt + std::max<int64_t>(r.max_new_tokens - 1, 0)) -
         prompt / cache.page_size();
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
    if (c.rope_type == RopeType::kLongrope && c.uses_long_factors(P + r.max_new_tokens - 1)) {
      throw InputError(where + "prompt " + std::to_string(P) + " + max_new_tokens " +
                       std::to_string(r.max_new_tokens) +
                       " exceeds original_max_position_embeddings " +
                       std::to_string(c.original_max_position_embeddings) +
                       " of this longrope model; the engine serves only the short-factor range");
    }
    const int64_t worst = prompt_pages(cache_, P, 0) + r.num_samples * sample_pages(cache_, r);
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
  // Sequences still held when this call ends (an exception) go back to the cache.
  struct Cleanup {
    PagedKvCache& cache;
    std::vector<Prefill>& prefilling;
    std::vector<Live>& live;
    ~Cleanup() {
      for (const auto& p : prefilling)
        if (cache.contains(p.seq)) cache.release(p.seq);
      for (const auto& s : live)
        if (!s.done && cache.contains(s.seq)) cache.release(s.seq);
    }
  } cleanup{cache_, prefilling, live};

  auto outstanding = [&] {
    int64_t n = 0;
    for (const auto& p : prefilling)
      n += p.reserve - cache_.allocated(p.seq);
    for (const auto& s : live)
      n += s.reserve - cache_.allocated(s.seq);
    return n;
  };
  auto batch_rows = [&] {
    int64_t n = static_cast<int64_t>(live.size());
    for (const auto& p : prefilling)
      n += requests[p.request].num_samples;
    return n;
  };

  // Admits waiting requests in order while they fit (see engine.h).
  auto admit = [&] {
    for (auto it = waiting.begin(); it != waiting.end();) {
      const GenerationRequest& r = requests[*it];
      const int64_t P = static_cast<int64_t>(r.prompt.size());
      if (batch_rows() + r.num_samples > options_.max_batch) return;
      PrefixCache::Match match;
      if (options_.reuse_prefixes) {
        match = prefixes_.find(r.prompt, P - 1);
        bool wait_for_prefill = false;
        for (const auto& p : prefilling) {
          const int64_t shared =
              std::min(common_prefix(r.prompt, requests[p.request].prompt), P - 1);
          if (shared >= match.length + ps) wait_for_prefill = true;
        }
        if (wait_for_prefill) {
          ++it;
          continue;
        }
      }
      auto need = [&] {
        return prompt_pages(cache_, P, match.length) + r.num_samples * sample_pages(cache_, r);
      };
      while (cache_.free_pages() - outstanding() < need()) {
        if (prefixes_.evict_one(match.entry)) continue;
        if (match.entry < 0) break;
        prefixes_.erase(match.entry);
        match = PrefixCache::Match();
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
      stats_.reused_prefix_tokens += match.length;
      prefilling.push_back(p);
      it = waiting.erase(it);
    }
  };

  int64_t generated = 0;
  while (!waiting.empty() || !prefilling.empty() || !live.empty()) {
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
    for (size_t i = 0; i < prefilling.size() && budget > 0; ++i) {
      const auto& prompt = requests[prefilling[i].request].prompt;
      const int64_t done = cache_.length(prefilling[i].seq);
      const int64_t n = std::min(static_cast<int64_t>(prompt.size()) - done, budget);
      const bool last = done + n == static_cast<int64_t>(prompt.size());
      rows.push_back(
          PagedRow{prefilling[i].seq,
                   std::vector<TokenId>(prompt.begin() + done, prompt.begin() + done + n), last});
      if (last) completed.push_back(i);
      budget -= n;
      prefill_tokens += n;
    }
    torch::Tensor logits = paged_forward(model_, cache_, rows);  // [rows with logits, V] fp32
    ++stats_.steps;
    stats_.prefill_tokens += prefill_tokens;
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
      const Prefill& p = prefilling[completed[j]];
      const GenerationRequest& r = requests[p.request];
      for (int64_t s = 0; s < r.num_samples; ++s) {
        Live child;
        child.request = p.request;
        child.index = s;
        child.seq = cache_.fork(p.seq);
        child.reserve = sample_pages(cache_, r);
        live.push_back(child);
        add_row(static_cast<int64_t>(decoding + j), live.size() - 1);
      }
      if (options_.reuse_prefixes) {
        prefixes_.insert(r.prompt, p.seq);
      } else {
        cache_.release(p.seq);
      }
    }
    for (auto it = completed.rbegin(); it != completed.rend(); ++it)
      prefilling.erase(prefilling.begin() + static_cast<std::ptrdiff_t>(*it));

    if (logit_rows.empty()) continue;  // only prompt chunks that do not end their prompt
    const SampleResult drawn =
        sample(logits.index_select(0, at::tensor(logit_rows, at::kLong).to(logits.device())),
               params, steps);
    const auto tokens = drawn.tokens.to(at::kCPU);
    const auto logprobs = drawn.logprobs.to(at::kCPU, at::kFloat);
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
