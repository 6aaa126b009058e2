#include "dpo/reference_logprobs.h"

#include <ATen/ATen.h>
#include <torch/torch.h>

#include <cmath>
#include <iomanip>
#include <sstream>

#include "common/error.h"
#include "common/jsonl.h"
#include "data/dataset_records.h"

namespace align {

Reference::Reference(ReferenceType type, std::optional<Phi3Model> model) : type_(type) {
  if (model) model_ = std::make_shared<Phi3Model>(std::move(*model));
  if (type == ReferenceType::kAuto) throw Error("Reference: resolve reference.type auto first");
  if (type == ReferenceType::kCheckpoint && !model_) {
    throw Error("Reference: the checkpoint reference needs its model");
  }
  if (model_) model_->set_training(false);
}

PairLogps Reference::logps(Phi3Model& policy, const PairBatch& batch,
                           bool checkpoint_layers) const {
  torch::NoGradGuard no_grad;
  if (type_ == ReferenceType::kPrecomputed) {
    if (!batch.ref_chosen.defined()) {
      throw InputError(
          "reference.type precomputed: the data lines carry no ref_chosen_logps / "
          "ref_rejected_logps (write them with align dpo --write-reference)");
    }
    return {batch.ref_chosen.to(policy.device()), batch.ref_rejected.to(policy.device()), {}, {}};
  }
  PairLogps out;
  with_model(policy, [&](const Phi3Model& ref) {
    // The frozen checkpoint keeps no activations; the policy keeps its own setting.
    out = score_pairs(ref, batch, &ref == &policy && checkpoint_layers);
  });
  return out;
}

void Reference::with_model(Phi3Model& policy,
                           const std::function<void(const Phi3Model&)>& score) const {
  torch::NoGradGuard no_grad;
  switch (type_) {
    case ReferenceType::kAuto:
      break;  // rejected by the constructor
    case ReferenceType::kPrecomputed:
      throw InputError("reference.type precomputed: there is no reference model to run");
    case ReferenceType::kCheckpoint:
      score(*model_);
      return;
    case ReferenceType::kLoraBase: {
      const bool was_training = policy.training();
      policy.set_training(false);
      policy.set_lora_enabled(false);
      try {
        score(policy);
      } catch (...) {
        policy.set_lora_enabled(true);
        policy.set_training(was_training);
        throw;
      }
      policy.set_lora_enabled(true);
      policy.set_training(was_training);
      return;
    }
  }
  throw Error("Reference: unknown type");
}

PairLogps score_all_pairs(const Phi3Model& model, const PairData& data, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  const int64_t N = data.num_pairs(), U = data.num_units();
  torch::Tensor chosen = torch::zeros({N}, torch::kFloat);
  torch::Tensor rejected = torch::zeros({N}, torch::kFloat);
  for (int64_t u = 0; u < U; u += batch_size) {
    std::vector<int64_t> units;
    for (int64_t i = u; i < std::min(U, u + batch_size); ++i)
      units.push_back(i);
    const PairBatch b = data.batch(units);
    const PairLogps s = score_pairs(model, b);
    const torch::Tensor ids = torch::tensor(b.pair_ids, torch::kInt64);
    chosen.index_copy_(0, ids, s.chosen.cpu());
    rejected.index_copy_(0, ids, s.rejected.cpu());
  }
  return {chosen, rejected, {}, {}};
}

double check_reference_logps(const Phi3Model& model, const PairData& data, int64_t max_pairs) {
  if (!data.has_reference()) throw InputError("check_reference_logps: no stored reference values");
  // Score only the units holding the first max_pairs pairs.
  torch::NoGradGuard no_grad;
  double worst = 0;
  int64_t checked = 0;
  for (int64_t u = 0; u < data.num_units() && checked < max_pairs; ++u) {
    const PairBatch b = data.batch({u});
    const PairLogps s = score_pairs(model, b);
    for (int64_t k = 0; k < b.num_pairs && checked < max_pairs; ++k, ++checked) {
      worst =
          std::max(worst, std::abs(s.chosen[k].item<double>() - b.ref_chosen[k].item<double>()));
      worst = std::max(worst,
                       std::abs(s.rejected[k].item<double>() - b.ref_rejected[k].item<double>()));
    }
  }
  return worst;
}

void write_reference_logps(const Phi3Model& model, const PairData& data, const std::string& in_path,
                           const std::string& out_path, int64_t batch_size) {
  const PairLogps s = score_all_pairs(model, data, batch_size);
  JsonlWriter out(out_path);
  int64_t i = 0;
  for_each_record(in_path, "data.train", [&](const nlohmann::json& record, const RecordLocation&) {
    if (i >= data.num_pairs()) throw InputError("more records than pairs read");
    nlohmann::json r = record;
    r["ref_chosen_logps"] = s.chosen[i].item<double>();
    r["ref_rejected_logps"] = s.rejected[i].item<double>();
    out.write(r);
    ++i;
  });
  if (i != data.num_pairs()) throw InputError(in_path + ": fewer records than pairs read");
  out.commit();
}

}  // namespace align
