// Torch's random-number generator states as JSON, so a resumed run draws the same numbers (dropout
// masks, shuffles seeded from torch) as an uninterrupted one:
//
//   {"cpu": "<base64 of the CPU default generator's state bytes>",
//    "cuda": ["<base64 of device 0's state>", ...]}          one entry per visible CUDA device
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace align {

nlohmann::json capture_rng_state();

// Restores states captured by capture_rng_state(). Devices saved but not visible now are skipped
// (a CPU-only resume of a GPU run restores the CPU generator only). Throws InputError naming
// `context` (the file it came from) when the JSON or a state is malformed.
void restore_rng_state(const nlohmann::json& state, const std::string& context);

// Standard base64 (RFC 4648, with padding). decode throws InputError naming `context` on bad input.
std::string base64_encode(const std::vector<uint8_t>& bytes);
std::vector<uint8_t> base64_decode(const std::string& text, const std::string& context);

}  // namespace align
