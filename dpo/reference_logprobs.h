// The DPO reference model's log-probabilities, from one of three sources (docs/dpo.md):
//
//   lora_base    the policy itself with its LoRA adapters disabled: no second copy of the weights
//   checkpoint   a separate frozen model directory
//   precomputed  ref_chosen_logps / ref_rejected_logps stored on each data line (summed over the
//                completion, as score_pairs computes them), written once by
//                write_reference_logps and optionally checked against a reference model
//
// Reference scoring always runs without gradient and with dropout off.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/enum_names.h"
#include "dpo/pair_data.h"
#include "dpo/pair_scoring.h"
#include "model/phi3_model.h"

namespace align {

// kAuto is a config value only (dpo_config.h resolves it): lora_base with LoRA, else checkpoint.
enum class ReferenceType { kAuto, kLoraBase, kCheckpoint, kPrecomputed };

template <>
struct EnumNames<ReferenceType> {
  static constexpr std::pair<ReferenceType, const char*> table[] = {
      {ReferenceType::kAuto, "auto"},
      {ReferenceType::kLoraBase, "lora_base"},
      {ReferenceType::kCheckpoint, "checkpoint"},
      {ReferenceType::kPrecomputed, "precomputed"}};
};

class Reference {
 public:
  // `model` for kCheckpoint (the frozen reference); empty otherwise.
  Reference(ReferenceType type, std::optional<Phi3Model> model);
  // [N] summed reference log-probs of the batch's pairs. `policy` is used by kLoraBase (adapters
  // are disabled for the call and re-enabled after). Throws InputError for kPrecomputed when the
  // batch carries no stored values.
  PairLogps logps(Phi3Model& policy, const PairBatch& batch, bool checkpoint_layers) const;
  // Runs `score` on the reference model without gradient: the frozen checkpoint, or `policy`
  // with its adapters disabled and dropout off (both restored after, also when `score` throws).
  // kPrecomputed has no model: InputError. (GRPO scores its completions per token so.)
  void with_model(Phi3Model& policy, const std::function<void(const Phi3Model&)>& score) const;
  ReferenceType type() const { return type_; }

 private:
  ReferenceType type_;
  std::shared_ptr<Phi3Model> model_;
};

// Scores every pair of `data` with `model` (no grad, eval mode), `batch_size` units at a time.
// Returns [N] chosen and rejected in dataset pair order.
PairLogps score_all_pairs(const Phi3Model& model, const PairData& data, int64_t batch_size);

// Max |stored - scored| over the first `max_pairs` pairs (in dataset order) of `data`, which must
// carry precomputed values.
double check_reference_logps(const Phi3Model& model, const PairData& data, int64_t max_pairs);

// Copies the records of `in_path` (the dataset `data` was read from, same order: JSONL, Parquet or
// a hub dataset id) to the JSONL `out_path` with ref_chosen_logps / ref_rejected_logps set on
// every record from `model`. Written atomically.
void write_reference_logps(const Phi3Model& model, const PairData& data, const std::string& in_path,
                           const std::string& out_path, int64_t batch_size);

}  // namespace align
