#include "sft/sft_config.h"

#include "common/config_reader.h"
#include "common/error.h"

namespace align {
namespace {

void check(bool ok, const std::string& source, const std::string& field, const std::string& what) {
  if (!ok) throw InputError(source + ": " + field + ": " + what);
}

}  // namespace

SftConfig parse_sft_config(const nlohmann::json& j, const std::string& source) {
  SftConfig c;
  ConfigReader root(j, source);

  ConfigReader model = root.section("model");
  model.require("path", c.model.path);
  model.get("dtype", c.model.dtype);
  model.get("device", c.model.device);
  model.get("activation_checkpointing", c.model.activation_checkpointing);
  model.finish();

  ConfigReader data = root.section("data");
  data.require("train", c.data.train);
  data.get("eval", c.data.eval);
  data.get("max_seq_len", c.data.max_seq_len);
  data.get("packing", c.data.packing);
  data.get("padding_free", c.data.padding_free);
  data.get("rows_per_batch", c.data.rows_per_batch);
  data.get("assistant_only_loss", c.data.assistant_only_loss);
  data.get("skip_bad_lines", c.data.skip_bad_lines);
  data.get("shuffle", c.data.shuffle);
  data.finish();

  read_train_sections(root, c);
  root.finish();

  check(c.data.max_seq_len > 1, source, "data.max_seq_len", "must be at least 2");
  check(c.data.rows_per_batch > 0, source, "data.rows_per_batch", "must be positive");
  check_train_sections(c, source);
  return c;
}

nlohmann::json to_json(const SftConfig& c) {
  nlohmann::json j = {
      {"model",
       {{"path", c.model.path},
        {"dtype", c.model.dtype},
        {"device", c.model.device},
        {"activation_checkpointing", c.model.activation_checkpointing}}},
      {"data",
       {{"train", c.data.train},
        {"eval", c.data.eval},
        {"max_seq_len", c.data.max_seq_len},
        {"packing", c.data.packing},
        {"padding_free", c.data.padding_free},
        {"rows_per_batch", c.data.rows_per_batch},
        {"assistant_only_loss", c.data.assistant_only_loss},
        {"skip_bad_lines", c.data.skip_bad_lines},
        {"shuffle", c.data.shuffle}}},
  };
  add_train_sections(j, c);
  return j;
}

}  // namespace align
