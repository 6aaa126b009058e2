#include "pts/pivotal_search.h"

#include <chrono>
#include <memory>

#include "common/error.h"
#include "common/seeding.h"
#include "pts/query_search.h"

namespace align {
namespace {

// The seed of the rollouts at one prefix; sample s after `drawn` earlier ones uses seed + drawn +
// s.
uint64_t prefix_seed(uint64_t seed, EstimateSpace space, const std::string& query_id,
                     const std::vector<TokenId>& prefix) {
  std::string name = space == EstimateSpace::kSearch ? "search" : "confirm";
  name += '\x1f';
  name += query_id;
  name += '\x1f';
  for (TokenId t : prefix) {
    name += std::to_string(t);
    name += ',';
  }
  return named_seed(seed, name);
}

std::vector<TokenId> concat(const std::vector<TokenId>& a, const std::vector<TokenId>& b) {
  std::vector<TokenId> out = a;
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

struct PendingRollout {
  size_t query;
  EstimateNeed need;
};

}  // namespace

void validate(const PtsOptions& o) {
  auto fail = [](const std::string& what) { throw InputError("pts." + what); };
  if (!(o.p_gap > 0 && o.p_gap <= 1)) fail("p_gap: expected a number in (0, 1]");
  if (!(o.band_low >= 0 && o.band_low <= o.band_high && o.band_high <= 1)) {
    fail("band: expected 0 <= band_low <= band_high <= 1");
  }
  if (o.completions_per_query < 1) fail("completions_per_query: expected at least 1");
  if (o.min_rollouts < 1) fail("min_rollouts: expected at least 1");
  if (o.rollout_step < 1) fail("rollout_step: expected at least 1");
  if (o.max_rollouts < o.min_rollouts) fail("max_rollouts: expected at least min_rollouts");
  if (!(o.confidence > 0 && o.confidence < 1)) fail("confidence: expected a number in (0, 1)");
  if (o.max_alternatives < 1) fail("max_alternatives: expected at least 1");
  if (o.confirm && o.confirm_rollouts < 1) fail("confirm_rollouts: expected at least 1");
  if (o.max_new_tokens < 1) fail("max_new_tokens: expected at least 1");
}

std::vector<QueryResult> search_pivots(const std::vector<Query>& queries, const Oracle& oracle,
                                       const PtsOptions& options, const RolloutFn& rollout,
                                       const DecodeFn& decode) {
  validate(options);
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<QuerySearch>> searches;
  for (const Query& q : queries)
    searches.push_back(std::make_unique<QuerySearch>(q, options));
  std::vector<double> finished_at(queries.size(), -1);

  while (true) {
    std::vector<PendingRollout> pending;
    for (size_t q = 0; q < searches.size(); ++q) {
      if (searches[q]->done()) continue;
      if (searches[q]->advance()) {
        finished_at[q] =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        continue;
      }
      for (EstimateNeed& need : searches[q]->needs())
        pending.push_back({q, std::move(need)});
    }
    if (pending.empty()) {
      for (const auto& s : searches)
        if (!s->done()) throw Error("pts: the search of query " + s->query().id + " stalled");
      break;
    }

    std::vector<GenerationRequest> requests;
    std::vector<size_t> request_of(pending.size(), SIZE_MAX);
    for (size_t i = 0; i < pending.size(); ++i) {
      const EstimateNeed& need = pending[i].need;
      if (need.grade_exactly) continue;
      const Query& q = searches[pending[i].query]->query();
      GenerationRequest r;
      r.prompt = concat(q.prompt, need.prefix);
      r.num_samples = need.count;
      r.max_new_tokens = options.max_new_tokens - static_cast<int64_t>(need.prefix.size());
      r.stop_token_ids = options.stop_token_ids;
      r.sampling = options.sampling;
      r.sampling.seed = prefix_seed(options.seed, need.space, q.id, need.prefix) +
                        static_cast<uint64_t>(need.drawn);
      request_of[i] = requests.size();
      requests.push_back(std::move(r));
    }
    const std::vector<std::vector<GeneratedSample>> results =
        requests.empty() ? std::vector<std::vector<GeneratedSample>>() : rollout(requests);
    if (results.size() != requests.size()) throw Error("pts: the rollout backend lost requests");

    // Grade per query (the oracle may run many completions of one item in parallel).
    for (size_t q = 0; q < searches.size(); ++q) {
      std::vector<std::string> texts;
      std::vector<size_t> owners;
      for (size_t i = 0; i < pending.size(); ++i) {
        if (pending[i].query != q) continue;
        const EstimateNeed& need = pending[i].need;
        if (need.grade_exactly) {
          texts.push_back(decode(need.prefix));
          owners.push_back(i);
          continue;
        }
        for (const GeneratedSample& s : results[request_of[i]]) {
          texts.push_back(decode(concat(need.prefix, s.tokens)));
          owners.push_back(i);
        }
      }
      if (texts.empty()) continue;
      const std::vector<bool> grades = oracle.grade_all(
          texts, q < queries.size() ? queries[q].fields : nlohmann::json::object());
      size_t k = 0;
      for (size_t i = 0; i < pending.size(); ++i) {
        if (pending[i].query != q) continue;
        const EstimateNeed& need = pending[i].need;
        if (need.grade_exactly) {
          searches[q]->add_exact(need.space, need.prefix, grades[k++]);
          continue;
        }
        const auto& samples = results[request_of[i]];
        std::vector<bool> success(grades.begin() + static_cast<std::ptrdiff_t>(k),
                                  grades.begin() + static_cast<std::ptrdiff_t>(k + samples.size()));
        k += samples.size();
        searches[q]->add_rollouts(need.space, need.prefix, samples, success);
      }
    }
  }

  std::vector<QueryResult> out;
  for (size_t q = 0; q < searches.size(); ++q) {
    out.push_back(searches[q]->result());
    out.back().seconds = finished_at[q];
  }
  return out;
}

}  // namespace align
