#include "dpo/pair_scoring.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <map>

#include "common/error.h"
#include "model/logprobs.h"

namespace align {
namespace {

// Rows padded into a [R, T] tensor.
torch::Tensor pad_rows(const std::vector<std::vector<int64_t>>& rows, int64_t pad_id,
                       std::vector<int64_t>* valid, int64_t* T) {
  *T = 1;
  for (const auto& r : rows)
    *T = std::max<int64_t>(*T, static_cast<int64_t>(r.size()));
  std::vector<int64_t> flat;
  flat.reserve(rows.size() * static_cast<size_t>(*T));
  for (const auto& r : rows) {
    flat.insert(flat.end(), r.begin(), r.end());
    flat.insert(flat.end(), static_cast<size_t>(*T) - r.size(), pad_id);
    valid->push_back(static_cast<int64_t>(r.size()));
  }
  return torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(rows.size()), *T});
}

// (flat position -> [(target, owner)]) into the batch's position / entry tensors.
void set_entries(PairBatch& b,
                 const std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>>& at) {
  std::vector<int64_t> positions, targets, owners;
  b.slot_offsets = {0};
  for (const auto& [pos, entries] : at) {
    positions.push_back(pos);
    for (const auto& [target, owner] : entries) {
      targets.push_back(target);
      owners.push_back(owner);
    }
    b.slot_offsets.push_back(static_cast<int64_t>(targets.size()));
  }
  b.positions = torch::tensor(positions, torch::kInt64);
  b.entry_targets = torch::tensor(targets, torch::kInt64);
  b.entry_owner = torch::tensor(owners, torch::kInt64);
}

template <typename Pair>
void set_pair_fields(PairBatch& b, const std::vector<const Pair*>& ps) {
  const int64_t N = static_cast<int64_t>(ps.size());
  std::vector<float> w, rc, rr;
  bool has_ref = N > 0;
  for (const Pair* p : ps) {
    w.push_back(static_cast<float>(p->weight));
    has_ref = has_ref && p->ref_chosen.has_value();
    if (has_ref) {
      rc.push_back(static_cast<float>(*p->ref_chosen));
      rr.push_back(static_cast<float>(*p->ref_rejected));
    }
  }
  b.num_pairs = N;
  b.weights = torch::tensor(w, torch::kFloat);
  if (has_ref) {
    b.ref_chosen = torch::tensor(rc, torch::kFloat);
    b.ref_rejected = torch::tensor(rr, torch::kFloat);
  }
  for (int64_t v : b.valid)
    b.real_tokens += v;
}

}  // namespace

PairBatch make_sequence_batch(const std::vector<PreferencePair>& pairs,
                              const std::vector<int64_t>& indices, int64_t pad_id) {
  if (indices.empty()) throw Error("make_sequence_batch: no pairs");
  const int64_t N = static_cast<int64_t>(indices.size());
  PairBatch b;
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(2 * N));
  std::vector<float> nc, nr;
  std::vector<const PreferencePair*> ps;
  for (int64_t k = 0; k < N; ++k) {
    const PreferencePair& p = pairs.at(static_cast<size_t>(indices[k]));
    ps.push_back(&p);
    b.pair_ids.push_back(indices[k]);
    for (int side = 0; side < 2; ++side) {
      auto& row = rows[static_cast<size_t>(k + side * N)];
      row.assign(p.prompt.begin(), p.prompt.end());
      const auto& completion = side == 0 ? p.chosen : p.rejected;
      row.insert(row.end(), completion.begin(), completion.end());
    }
    nc.push_back(static_cast<float>(p.chosen.size()));
    nr.push_back(static_cast<float>(p.rejected.size()));
  }
  int64_t T = 0;
  b.tokens = pad_rows(rows, pad_id, &b.valid, &T);
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> at;
  for (int64_t k = 0; k < N; ++k) {
    const PreferencePair& p = *ps[static_cast<size_t>(k)];
    const int64_t Tp = static_cast<int64_t>(p.prompt.size());
    for (int side = 0; side < 2; ++side) {
      const int64_t r = k + side * N;
      const auto& row = rows[static_cast<size_t>(r)];
      for (int64_t s = std::max<int64_t>(Tp, 1); s < static_cast<int64_t>(row.size()); ++s) {
        at[r * T + s - 1].push_back({row[static_cast<size_t>(s)], r});
      }
    }
  }
  set_entries(b, at);
  b.chosen_tokens = torch::tensor(nc, torch::kFloat);
  b.rejected_tokens = torch::tensor(nr, torch::kFloat);
  set_pair_fields(b, ps);
  return b;
}

PairBatch make_chain_batch(const std::vector<TokenPair>& pairs,
                           const std::vector<PairChain>& chains,
                           const std::vector<int64_t>& chain_indices, int64_t pad_id) {
  if (chain_indices.empty()) throw Error("make_chain_batch: no chains");
  PairBatch b;
  std::vector<std::vector<int64_t>> rows;
  std::vector<const TokenPair*> ps;
  for (int64_t c : chain_indices) {
    const PairChain& chain = chains.at(static_cast<size_t>(c));
    rows.emplace_back(chain.tokens.begin(), chain.tokens.end());
    for (int64_t i : chain.pairs) {
      ps.push_back(&pairs.at(static_cast<size_t>(i)));
      b.pair_ids.push_back(i);
    }
  }
  const int64_t N = static_cast<int64_t>(ps.size());
  int64_t T = 0;
  b.tokens = pad_rows(rows, pad_id, &b.valid, &T);
  std::map<int64_t, std::vector<std::pair<int64_t, int64_t>>> at;
  int64_t k = 0;
  for (size_t r = 0; r < chain_indices.size(); ++r) {
    const PairChain& chain = chains[static_cast<size_t>(chain_indices[r])];
    for (size_t j = 0; j < chain.pairs.size(); ++j, ++k) {
      const TokenPair& p = *ps[static_cast<size_t>(k)];
      auto& entries = at[static_cast<int64_t>(r) * T + static_cast<int64_t>(p.prompt.size()) - 1];
      entries.push_back({p.chosen, k});
      entries.push_back({p.rejected, N + k});
    }
  }
  set_entries(b, at);
  b.chosen_tokens = torch::ones({N}, torch::kFloat);
  b.rejected_tokens = torch::ones({N}, torch::kFloat);
  set_pair_fields(b, ps);
  return b;
}

PairLogps score_pairs(const Phi3Model& model, const PairBatch& b, bool checkpoint_layers,
                      int64_t chunk_tokens) {
  const torch::Device device = model.device();
  const torch::Tensor h = hidden_at(model, b.tokens, b.valid, b.positions, checkpoint_layers);
  const torch::Tensor targets = b.entry_targets.to(device);  // [M]
  const int64_t U = h.size(0);
  std::vector<torch::Tensor> values, means;  // per chunk [m] fp32
  for (int64_t u = 0; u < U; u += chunk_tokens) {
    const int64_t n = std::min(chunk_tokens, U - u);
    const torch::Tensor logits = model.logits(h.narrow(0, u, n));  // [n, V]
    const torch::Tensor logp = at::log_softmax(logits, -1);
    const int64_t e0 = b.slot_offsets[static_cast<size_t>(u)];
    const int64_t e1 = b.slot_offsets[static_cast<size_t>(u + n)];
    std::vector<int64_t> rows;  // entry -> row of logp
    for (int64_t s = 0; s < n; ++s) {
      for (int64_t e = b.slot_offsets[static_cast<size_t>(u + s)];
           e < b.slot_offsets[static_cast<size_t>(u + s + 1)]; ++e)
        rows.push_back(s);
    }
    const torch::Tensor row_idx = torch::tensor(rows, torch::kInt64).to(device);
    values.push_back(logp.index({row_idx, targets.narrow(0, e0, e1 - e0)}));
    means.push_back(logits.detach().mean(-1).index_select(0, row_idx));
  }
  const torch::Tensor v = at::cat(values);  // [M]
  const int64_t N = b.num_pairs;
  const torch::Tensor owner = b.entry_owner.to(device);
  const torch::Tensor sums = at::zeros({2 * N}, v.options()).index_add(0, owner, v);
  const torch::Tensor m = at::cat(means);
  const torch::Tensor mean_sums = at::zeros({2 * N}, m.options()).index_add(0, owner, m);
  return {sums.narrow(0, 0, N), sums.narrow(0, N, N), mean_sums.narrow(0, 0, N),
          mean_sums.narrow(0, N, N)};
}

}  // namespace align
