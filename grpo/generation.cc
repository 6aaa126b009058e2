#include "grpo/generation.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "common/error.h"
#include "common/seeding.h"

namespace align {

PromptLoader::PromptLoader(int64_t num_queries, bool shuffle, uint64_t seed)
    : n_(num_queries), shuffle_(shuffle), seed_(seed) {
  if (n_ < 1) throw InputError("grpo: no queries to sample");
}

std::vector<int64_t> PromptLoader::next(int64_t count) {
  std::vector<int64_t> out;
  while (static_cast<int64_t>(out.size()) < count) {
    if (state_.cursor >= n_) state_ = {state_.epoch + 1, 0};
    if (order_epoch_ != state_.epoch) {
      if (shuffle_) {
        order_ = epoch_order(n_, seed_, state_.epoch);
      } else {
        order_.resize(static_cast<size_t>(n_));
        std::iota(order_.begin(), order_.end(), 0);
      }
      order_epoch_ = state_.epoch;
    }
    out.push_back(order_[static_cast<size_t>(state_.cursor++)]);
  }
  return out;
}

void PromptLoader::restore(const BatcherState& s) {
  if (s.epoch < 0 || s.cursor < 0 || s.cursor > n_) {
    throw InputError("data position (epoch " + std::to_string(s.epoch) + ", cursor " +
                     std::to_string(s.cursor) + ") does not fit this query set of " +
                     std::to_string(n_) + " queries");
  }
  state_ = s;
}

namespace {

// Every rank's rollouts into every rank: each fills its own rows of zero tensors, one sum.
void exchange(std::vector<Rollout>& all, int64_t first, int64_t count, int64_t max_tokens,
              int64_t num_rewards, ProcessGroup& group) {
  if (group.world_size() == 1) return;
  const int64_t N = static_cast<int64_t>(all.size()), L = max_tokens, F = num_rewards;
  torch::Tensor ints = torch::zeros({N, L + 3}, torch::kInt64);  // query, length, truncated, ids
  torch::Tensor floats = torch::zeros({N, L + F}, torch::kFloat64);  // logprobs, rewards
  {
    auto I = ints.accessor<int64_t, 2>();
    auto X = floats.accessor<double, 2>();
    for (int64_t i = first; i < first + count; ++i) {
      const Rollout& r = all[static_cast<size_t>(i)];
      const int64_t n = static_cast<int64_t>(r.tokens.size());
      I[i][0] = r.query;
      I[i][1] = n;
      I[i][2] = r.truncated ? 1 : 0;
      for (int64_t t = 0; t < n; ++t) {
        I[i][3 + t] = static_cast<int64_t>(r.tokens[static_cast<size_t>(t)]);
        X[i][t] = static_cast<double>(r.logprobs[static_cast<size_t>(t)]);
      }
      for (int64_t k = 0; k < F; ++k)
        X[i][L + k] = r.rewards[static_cast<size_t>(k)];
    }
  }
  ints = ints.to(group.device());
  floats = floats.to(group.device());
  group.all_reduce_sum(ints);
  group.all_reduce_sum(floats);
  ints = ints.cpu();
  floats = floats.cpu();
  const auto I = ints.accessor<int64_t, 2>();
  const auto X = floats.accessor<double, 2>();
  for (int64_t i = 0; i < N; ++i) {
    if (i >= first && i < first + count) continue;
    Rollout& r = all[static_cast<size_t>(i)];
    r.query = I[i][0];
    const int64_t n = I[i][1];
    r.truncated = I[i][2] != 0;
    r.tokens.resize(static_cast<size_t>(n));
    r.logprobs.resize(static_cast<size_t>(n));
    for (int64_t t = 0; t < n; ++t) {
      r.tokens[static_cast<size_t>(t)] = static_cast<TokenId>(I[i][3 + t]);
      r.logprobs[static_cast<size_t>(t)] = static_cast<float>(X[i][t]);
    }
    r.rewards.resize(static_cast<size_t>(F));
    for (int64_t k = 0; k < F; ++k)
      r.rewards[static_cast<size_t>(k)] = X[i][L + k];
  }
}

// Mean and std (n - 1; NaN below 2 values, as TRL's nanstd) of `v`.
std::pair<double, double> mean_std(const std::vector<double>& v) {
  const torch::Tensor t = torch::tensor(v, torch::kFloat64);
  return {t.mean().item<double>(),
          v.size() > 1 ? t.std(/*unbiased=*/true).item<double>() : std::nan("")};
}

}  // namespace

Generation sample_generation(Engine& engine, const Tokenizer& tokenizer,
                             const std::vector<Query>& queries, const std::vector<Reward>& rewards,
                             const std::vector<int64_t>& prompts, int64_t index,
                             const GenerationOptions& o, ProcessGroup& group) {
  const int64_t P = static_cast<int64_t>(prompts.size()), G = o.num_generations;
  const int64_t W = group.world_size();
  if (P % W != 0) throw Error("sample_generation: prompts do not split over the ranks");
  const int64_t share = P / W, first = group.rank() * share;
  Generation g;
  g.index = index;
  g.rollouts.resize(static_cast<size_t>(P * G));
  std::vector<GenerationRequest> requests;
  for (int64_t p = first; p < first + share; ++p) {
    GenerationRequest r;
    r.prompt = queries[static_cast<size_t>(prompts[static_cast<size_t>(p)])].prompt;
    r.num_samples = G;
    r.max_new_tokens = o.sampling.max_new_tokens;
    r.stop_token_ids = o.stop_token_ids;
    r.sampling = o.sampling.params(
        named_seed(o.seed, "grpo/" + std::to_string(index) + "/" + std::to_string(p)));
    requests.push_back(std::move(r));
  }
  const std::vector<std::vector<GeneratedSample>> samples = engine.generate(requests);
  for (int64_t p = first; p < first + share; ++p) {
    const auto& group_samples = samples[static_cast<size_t>(p - first)];
    const Query& q = queries[static_cast<size_t>(prompts[static_cast<size_t>(p)])];
    std::vector<std::string> texts;
    std::vector<int64_t> lengths;
    for (const GeneratedSample& s : group_samples) {
      texts.push_back(completion_text(tokenizer, s.tokens));
      lengths.push_back(static_cast<int64_t>(s.tokens.size()));
    }
    const std::vector<std::vector<double>> scores =
        score_rewards(rewards, texts, lengths, q.fields);
    for (int64_t s = 0; s < G; ++s) {
      Rollout& r = g.rollouts[static_cast<size_t>(p * G + s)];
      const GeneratedSample& sample = group_samples[static_cast<size_t>(s)];
      r.query = prompts[static_cast<size_t>(p)];
      r.tokens = sample.tokens;
      r.logprobs = sample.logprobs;
      r.truncated = sample.finish_reason != "stop";
      r.rewards = scores[static_cast<size_t>(s)];
    }
  }
  exchange(g.rollouts, first * G, share * G, o.sampling.max_new_tokens,
           static_cast<int64_t>(rewards.size()), group);
  finish_generation(g, queries, rewards, o);
  return g;
}

void share_old_logprobs(Generation& g, int64_t max_tokens, ProcessGroup& group) {
  if (group.world_size() == 1) return;
  const int64_t N = static_cast<int64_t>(g.rollouts.size());
  torch::Tensor t = torch::zeros({N, max_tokens}, torch::kFloat64);
  std::vector<bool> mine(static_cast<size_t>(N));
  auto W = t.accessor<double, 2>();
  for (int64_t i = 0; i < N; ++i) {
    const std::vector<float>& v = g.rollouts[static_cast<size_t>(i)].old_logprobs;
    mine[static_cast<size_t>(i)] = !v.empty();
    for (size_t j = 0; j < v.size(); ++j)
      W[i][static_cast<int64_t>(j)] = static_cast<double>(v[j]);
  }
  t = t.to(group.device());
  group.all_reduce_sum(t);
  t = t.cpu();
  const auto X = t.accessor<double, 2>();
  for (int64_t i = 0; i < N; ++i) {
    Rollout& r = g.rollouts[static_cast<size_t>(i)];
    if (mine[static_cast<size_t>(i)]) continue;
    r.old_logprobs.resize(r.tokens.size());
    for (size_t j = 0; j < r.tokens.size(); ++j)
      r.old_logprobs[j] = static_cast<float>(X[i][static_cast<int64_t>(j)]);
  }
}

void finish_generation(Generation& g, const std::vector<Query>& queries,
                       const std::vector<Reward>& rewards, const GenerationOptions& o) {
  const size_t N = g.rollouts.size(), F = rewards.size();
  std::vector<double> total(N, 0.0), lengths, terminated;
  std::vector<std::vector<double>> per_reward(F);
  int64_t clipped = 0;
  g.tokens = 0;
  for (size_t i = 0; i < N; ++i) {
    const Rollout& r = g.rollouts[i];
    if (r.rewards.size() != F) throw Error("finish_generation: a rollout lacks rewards");
    for (size_t k = 0; k < F; ++k) {
      total[i] += o.reward_weights[k] * r.rewards[k];
      per_reward[k].push_back(r.rewards[k]);
    }
    const double n = static_cast<double>(r.tokens.size());
    lengths.push_back(n);
    if (r.truncated) {
      ++clipped;
    } else {
      terminated.push_back(n);
    }
    g.tokens += static_cast<int64_t>(queries[static_cast<size_t>(r.query)].prompt.size()) +
                static_cast<int64_t>(r.tokens.size());
  }
  // The weighted sum in fp32, as TRL sums its fp32 rewards_per_func.
  torch::Tensor per_func = torch::empty({static_cast<int64_t>(N), static_cast<int64_t>(F)});
  auto pf = per_func.accessor<float, 2>();
  for (size_t i = 0; i < N; ++i)
    for (size_t k = 0; k < F; ++k)
      pf[static_cast<int64_t>(i)][static_cast<int64_t>(k)] =
          static_cast<float>(g.rollouts[i].rewards[k]);
  const torch::Tensor weights = torch::tensor(o.reward_weights, torch::kFloat);
  g.rewards = (per_func * weights.unsqueeze(0)).sum(1);
  g.advantages = group_advantages(g.rewards, o.num_generations, o.scale_rewards);

  nlohmann::json m = nlohmann::json::object();
  const auto [mean_len, std_len] = mean_std(lengths);
  m["completions/mean_length"] = mean_len;
  m["completions/min_length"] = *std::min_element(lengths.begin(), lengths.end());
  m["completions/max_length"] = *std::max_element(lengths.begin(), lengths.end());
  m["completions/clipped_ratio"] = static_cast<double>(clipped) / static_cast<double>(N);
  if (terminated.empty()) terminated.push_back(0.0);  // TRL's edge case
  m["completions/mean_terminated_length"] = mean_std(terminated).first;
  m["completions/min_terminated_length"] = *std::min_element(terminated.begin(), terminated.end());
  m["completions/max_terminated_length"] = *std::max_element(terminated.begin(), terminated.end());
  for (size_t k = 0; k < F; ++k) {
    const auto [mean, std] = mean_std(per_reward[k]);
    m["rewards/" + rewards[k].name + "/mean"] = mean;
    m["rewards/" + rewards[k].name + "/std"] = std;
  }
  const torch::Tensor r = g.rewards.to(torch::kFloat64);
  m["reward"] = r.mean().item<double>();
  m["reward_std"] = N > 1 ? r.std(true).item<double>() : std::nan("");
  m["frac_reward_zero_std"] = g.advantages.zero_std.to(torch::kFloat64).mean().item<double>();
  g.metrics = std::move(m);
}

std::vector<nlohmann::json> completion_records(const Generation& g,
                                               const std::vector<Query>& queries,
                                               const std::vector<Reward>& rewards,
                                               const Tokenizer& tokenizer) {
  std::vector<nlohmann::json> out;
  const torch::Tensor reward = g.rewards.to(torch::kFloat64).contiguous();
  const torch::Tensor advantage = g.advantages.advantages.to(torch::kFloat64).contiguous();
  const double* rewards_of = reward.data_ptr<double>();
  const double* advantages_of = advantage.data_ptr<double>();
  for (size_t i = 0; i < g.rollouts.size(); ++i) {
    const Rollout& r = g.rollouts[i];
    const Query& q = queries[static_cast<size_t>(r.query)];
    nlohmann::json named = nlohmann::json::object();
    for (size_t k = 0; k < rewards.size(); ++k)
      named[rewards[k].name] = r.rewards[k];
    const int64_t row = static_cast<int64_t>(i);
    out.push_back({{"query_id", q.id},
                   {"prompt", tokenizer.decode(q.prompt)},
                   {"completion", completion_text(tokenizer, r.tokens)},
                   {"token_ids", r.tokens},
                   {"finish_reason", r.truncated ? "length" : "stop"},
                   {"rewards", named},
                   {"reward", rewards_of[row]},
                   {"advantage", advantages_of[row]}});
  }
  return out;
}

nlohmann::json to_json(const Generation& g) {
  nlohmann::json rollouts = nlohmann::json::array();
  for (const Rollout& r : g.rollouts) {
    nlohmann::json j = {{"query", r.query},
                        {"tokens", r.tokens},
                        {"logprobs", r.logprobs},
                        {"truncated", r.truncated},
                        {"rewards", r.rewards}};
    if (!r.old_logprobs.empty()) j["old_logprobs"] = r.old_logprobs;
    rollouts.push_back(std::move(j));
  }
  return {{"index", g.index}, {"rollouts", rollouts}};
}

Generation generation_from_json(const nlohmann::json& j, int64_t num_queries,
                                const std::string& source) {
  Generation g;
  try {
    g.index = j.at("index").get<int64_t>();
    for (const nlohmann::json& x : j.at("rollouts")) {
      Rollout r;
      r.query = x.at("query").get<int64_t>();
      r.tokens = x.at("tokens").get<std::vector<TokenId>>();
      r.logprobs = x.at("logprobs").get<std::vector<float>>();
      if (x.contains("old_logprobs"))
        r.old_logprobs = x.at("old_logprobs").get<std::vector<float>>();
      r.truncated = x.at("truncated").get<bool>();
      r.rewards = x.at("rewards").get<std::vector<double>>();
      if (r.query < 0 || r.query >= num_queries || r.tokens.empty() ||
          r.logprobs.size() != r.tokens.size()) {
        throw InputError("a rollout does not fit the query set");
      }
      g.rollouts.push_back(std::move(r));
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(source + ": the saved generation is malformed: " + e.what());
  } catch (const InputError& e) {
    throw InputError(source + ": the saved generation: " + e.what());
  }
  return g;
}

}  // namespace align
