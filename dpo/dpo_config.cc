#include "dpo/dpo_config.h"

#include "common/config_reader.h"
#include "common/error.h"
#include "data/preference_dataset.h"
#include "dpo/dpo_loss.h"

namespace align {
namespace {

void check(bool ok, const std::string& source, const std::string& field, const std::string& what) {
  if (!ok) throw InputError(source + ": " + field + ": " + what);
}

// Re-throws a parser's "field: message" with the config file in front.
template <typename F>
void named(const std::string& source, F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }
}

}  // namespace

DpoConfig parse_dpo_config(const nlohmann::json& j, const std::string& source) {
  DpoConfig c;
  ConfigReader root(j, source);

  ConfigReader model = root.section("model");
  model.require("path", c.model.path);
  model.get("dtype", c.model.dtype);
  model.get("device", c.model.device);
  model.get("activation_checkpointing", c.model.activation_checkpointing);
  model.finish();

  ConfigReader ref = root.section("reference");
  ref.get("type", c.reference.type);
  ref.get("path", c.reference.path);
  ref.get("check_pairs", c.reference.check_pairs);
  ref.get("check_tolerance", c.reference.check_tolerance);
  ref.finish();

  ConfigReader data = root.section("data");
  data.require("train", c.data.train);
  data.get("eval", c.data.eval);
  data.get("format", c.data.format);
  data.get("max_seq_len", c.data.max_seq_len);
  data.get("batch_size", c.data.batch_size);
  data.get("weight", c.data.weight);
  data.get("shuffle", c.data.shuffle);
  data.finish();

  ConfigReader dpo = root.section("dpo");
  dpo.get("loss", c.dpo.loss);
  dpo.get("beta", c.dpo.beta);
  dpo.get("label_smoothing", c.dpo.label_smoothing);
  dpo.get("nll_weight", c.dpo.nll_weight);
  dpo.finish();

  read_train_sections(root, c);
  root.finish();

  const std::string& rt = c.reference.type;
  check(rt == "auto" || rt == "lora_base" || rt == "checkpoint" || rt == "precomputed", source,
        "reference.type",
        "expected auto, lora_base, checkpoint or precomputed, found '" + rt + "'");
  if (rt == "auto") {
    c.reference.type = c.lora.enabled ? "lora_base" : "checkpoint";
    if (!c.lora.enabled && c.reference.path.empty()) c.reference.path = c.model.path;
  }
  check(c.reference.type != "lora_base" || c.lora.enabled, source, "reference.type",
        "lora_base needs lora.enabled (the reference is the model with its adapters disabled)");
  check(c.reference.type != "checkpoint" || !c.reference.path.empty(), source, "reference.path",
        "the checkpoint reference needs the reference model's directory");
  check(c.reference.check_pairs >= 0, source, "reference.check_pairs", "must be >= 0");
  check(c.reference.check_tolerance > 0, source, "reference.check_tolerance", "must be positive");
  check(c.data.format == "sequence" || c.data.format == "token", source, "data.format",
        "expected sequence or token, found '" + c.data.format + "'");
  check(c.data.max_seq_len > 1, source, "data.max_seq_len", "must be at least 2");
  check(c.data.batch_size > 0, source, "data.batch_size", "must be positive");
  PairWeight weight = PairWeight::kNone;
  named(source, [&] { weight = parse_pair_weight(c.data.weight, "data.weight"); });
  check(weight != PairWeight::kPGap || c.data.format == "token", source, "data.weight",
        "p_gap needs data.format token (PTS pairs carry p_chosen and p_rejected)");
  named(source, [&] {
    DpoLossOptions loss{parse_dpo_loss_type(c.dpo.loss, "dpo.loss"), c.dpo.beta,
                        c.dpo.label_smoothing};
    validate(loss);
  });
  check(c.dpo.nll_weight >= 0, source, "dpo.nll_weight", "must be >= 0");
  check_train_sections(c, source);
  return c;
}

nlohmann::json to_json(const DpoConfig& c) {
  nlohmann::json j = {
      {"model",
       {{"path", c.model.path},
        {"dtype", c.model.dtype},
        {"device", c.model.device},
        {"activation_checkpointing", c.model.activation_checkpointing}}},
      {"reference",
       {{"type", c.reference.type},
        {"path", c.reference.path},
        {"check_pairs", c.reference.check_pairs},
        {"check_tolerance", c.reference.check_tolerance}}},
      {"data",
       {{"train", c.data.train},
        {"eval", c.data.eval},
        {"format", c.data.format},
        {"max_seq_len", c.data.max_seq_len},
        {"batch_size", c.data.batch_size},
        {"weight", c.data.weight},
        {"shuffle", c.data.shuffle}}},
      {"dpo",
       {{"loss", c.dpo.loss},
        {"beta", c.dpo.beta},
        {"label_smoothing", c.dpo.label_smoothing},
        {"nll_weight", c.dpo.nll_weight}}},
  };
  add_train_sections(j, c);
  return j;
}

}  // namespace align
