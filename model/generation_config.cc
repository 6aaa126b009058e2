#include "model/generation_config.h"

namespace align {

nlohmann::json generation_config_json(const ModelConfig& config) {
  nlohmann::json gen = {{"_from_model_config", true}};
  if (config.bos_token_id) gen["bos_token_id"] = *config.bos_token_id;
  if (config.eos_token_ids.size() == 1) gen["eos_token_id"] = config.eos_token_ids[0];
  if (config.eos_token_ids.size() > 1) gen["eos_token_id"] = config.eos_token_ids;
  if (config.pad_token_id) gen["pad_token_id"] = *config.pad_token_id;
  return gen;
}

}  // namespace align
