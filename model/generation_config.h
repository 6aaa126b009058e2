// generation_config.json of a model folder align writes (init, import): what transformers'
// GenerationConfig.from_model_config keeps of config.json's special ids.
#pragma once

#include <nlohmann/json.hpp>

#include "model/config.h"

namespace align {

// {"_from_model_config": true, "bos_token_id", "eos_token_id" (an int, or a list when several),
// "pad_token_id"}, each id only when the config has it.
nlohmann::json generation_config_json(const ModelConfig& config);

}  // namespace align
