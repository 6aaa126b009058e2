#include "sft/sft_config.h"

#include "common/config_fields.h"

namespace align {

SftConfig parse_sft_config(const nlohmann::json& j, const std::string& source,
                           const std::string& key_prefix) {
  SftConfig c;
  const nlohmann::json spelled = with_peft_spellings(j, source, key_prefix);
  ConfigReader root(spelled, source, key_prefix);
  read_fields(root, c);
  check_config(c.data.max_seq_len > 1, source, "data.max_seq_len", "must be at least 2");
  check_config(c.data.rows_per_batch > 0, source, "data.rows_per_batch", "must be positive");
  check_train_sections(c, source);
  return c;
}

nlohmann::json to_json(const SftConfig& c) {
  return to_json_fields(c);
}

}  // namespace align
