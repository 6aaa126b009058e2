// The `align dpo` run config: the trainers' shared sections (train/train_sections.h: model,
// optimizer, schedule, training, lora, output, with DPO's defaults) and DPO's reference, data and
// dpo sections, each defined once (common/config_fields.h), read strictly and written back
// resolved into the run's output folder. `align dpo --help` lists every key.
//
// reference.type auto resolves to lora_base with LoRA and to checkpoint (path = model.path, the
// starting weights, as TRL's implicit reference copy) without. precomputed reads
// ref_chosen_logps / ref_rejected_logps from the data lines; with a reference.path it checks the
// first check_pairs pairs against that model (max abs difference <= check_tolerance).
// data.batch_size counts pairs (sequence format) or chains, i.e. completions (token format).
// eval: the held-out generation eval that picks the step the run returns (DpoEvalSection).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "common/enum_names.h"
#include "data/preference_dataset.h"
#include "dpo/dpo_loss.h"
#include "dpo/reference_logprobs.h"
#include "eval/eval_config.h"
#include "train/train_sections.h"

namespace align {

// sequence: TRL-style prompt/chosen/rejected lines; token: PTS token pairs (pairs.jsonl).
enum class PairFormat { kSequence, kToken };

template <>
struct EnumNames<PairFormat> {
  static constexpr std::pair<PairFormat, const char*> table[] = {
      {PairFormat::kSequence, "sequence"}, {PairFormat::kToken, "token"}};
};

struct DpoReferenceSection {
  ReferenceType type = ReferenceType::kAuto;
  std::string path;
  int64_t check_pairs = 16;
  double check_tolerance = 1e-3;

  template <typename V>
  void fields(V& v) {
    v("type", type, "where reference log-probs come from");
    v("path", path, "checkpoint: the frozen reference model; precomputed: optional, to check");
    v("check_pairs", check_pairs, "precomputed + path: pairs checked against the model");
    v("check_tolerance", check_tolerance, "precomputed + path: max abs difference allowed");
  }
};

struct DpoDataSection {
  std::string train;
  std::string eval;
  PairFormat format = PairFormat::kSequence;
  int64_t max_seq_len = 2048;
  int64_t batch_size = 4;
  PairWeight weight = PairWeight::kNone;
  bool shuffle = true;

  template <typename V>
  void fields(V& v) {
    v.required("train", train,
               "preference pairs: a JSONL file, a Parquet file or folder, or a hub dataset "
               "ORG/NAME[@REV][:SPLIT] from the local cache (docs/datasets.md)");
    v("eval", eval, "optional held-out pairs in the same format, read the same way");
    v("format", format, "sequence (prompt/chosen/rejected) or token (PTS pairs)");
    v("max_seq_len", max_seq_len, "tokens per sequence (longer ones are truncated)");
    v("batch_size", batch_size, "pairs (sequence) or chains (token) per micro-batch");
    v("weight", weight, "per-pair weights: none, the \"weight\" field, or |p_chosen - p_rejected|");
    v("shuffle", shuffle, "shuffle every epoch");
  }
};

struct DpoLossSection {
  DpoLossType loss = DpoLossType::kSigmoid;
  double beta = 0.1;
  double label_smoothing = 0.0;
  double nll_weight = 0.0;

  template <typename V>
  void fields(V& v) {
    v("loss", loss, "the DPO loss (docs/dpo.md)");
    v("beta", beta, "strength of the KL constraint");
    v("label_smoothing", label_smoothing, "sigmoid (cDPO) and robust: assumed label noise");
    v("nll_weight", nll_weight, "weight of the mean NLL per chosen token (TRL's rpo_alpha)");
  }
  DpoLossOptions options() const { return {loss, beta, label_smoothing}; }
};

// Held-out generation eval of the policy (dpo/held_out_eval.h): with `queries` set, every `every`
// steps (and at the start and the last step) each query is sampled and graded by `oracle`; the
// best step by `metric` is the run's result when keep_best (the others are only reported). A step
// whose completions/clipped_ratio (samples that hit sampling.max_new_tokens) exceeds
// max_clipped_ratio is never the best while another is within it (train/best_step.h); the
// default 1 limits nothing, as a ratio that is normal depends on the task and max_new_tokens.
struct DpoEvalSection {
  std::string queries;
  std::string system_prompt;
  int64_t limit = 0;
  nlohmann::json oracle = nlohmann::json::object();
  EvalSamplingSection sampling;
  EngineOptions rollout;
  int64_t every = 0;
  std::string metric = "pass@1";
  bool keep_best = true;
  double max_clipped_ratio = 1;
  double confidence = 0.95;

  template <typename V>
  void fields(V& v) {
    v("queries", queries,
      "held-out queries as align eval reads them (JSONL, Parquet or a hub dataset id); empty: "
      "no such eval");
    v("system_prompt", system_prompt, "a system turn before each \"prompt\"");
    v("limit", limit, "the first N queries only; 0: all");
    v("oracle", oracle, "grades the completions: {\"type\": ...} (docs/oracles.md)");
    v.section("sampling", sampling);
    v.section("rollout", rollout);
    v("every", every, "steps between evals; 0: training.eval_every (start and end always)");
    v("metric", metric, "what best means: pass@1, or a rate key of the oracle (docs/oracles.md)");
    v("keep_best", keep_best, "the run's result is the best eval's step, not the last");
    v("max_clipped_ratio", max_clipped_ratio,
      "a step with more of its samples cut at max_new_tokens is never the best; 1: no limit");
    v("confidence", confidence, "of the intervals");
  }
  bool enabled() const { return !queries.empty(); }
};

// optimizer, schedule, training, lora, output: the trainers' shared sections, with DPO's defaults
// (TRL DPOConfig's lr 1e-6, linear schedule, LoRA on without dropout).
struct DpoConfig : TrainSections {
  DpoConfig() {
    optimizer.lr = 1e-6;
    schedule.type = LrScheduleType::kLinear;
    lora.enabled = true;
    lora.dropout = 0.0;
  }
  DpoReferenceSection reference;
  DpoDataSection data;
  DpoLossSection dpo;
  DpoEvalSection eval;

  template <typename V>
  void fields(V& v) {
    TrainSections::fields(v);
    v.section("reference", reference);
    v.section("data", data);
    v.section("dpo", dpo);
    v.section("eval", eval);
  }
};

// Checks an enabled eval section (every, limit, confidence, max_clipped_ratio, the oracle, the
// sampling); `oracle_hint` ends the message of a missing oracle. Throws InputError naming
// `source` and the eval.* key.
void check_eval_section(const DpoEvalSection& eval, const std::string& source,
                        const std::string& oracle_hint);

// Reads, validates and resolves reference.type auto. Throws InputError "source: key.path: ...".
// `key_prefix`: where this config sits in a larger one (the pipeline's "dpo"), for messages.
DpoConfig parse_dpo_config(const nlohmann::json& j, const std::string& source,
                           const std::string& key_prefix = "");
nlohmann::json to_json(const DpoConfig& config);

}  // namespace align
