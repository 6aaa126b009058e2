// Reading the tokenizer golden files written by tools/golden_tokenizer.py.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/atomic_file.h"
#include "data/token_id.h"
#include "tests/test_util.h"

namespace align::testing {

inline std::string tokenizer_golden(const std::string& name) {
  return golden_path("tokenizer/" + name);
}

inline nlohmann::json read_golden_json(const std::string& name) {
  return nlohmann::json::parse(read_file(tokenizer_golden(name)));
}

inline std::string from_hex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// The input of an encode case: "text", or raw bytes in "bytes_hex" (invalid UTF-8).
inline std::string case_input(const nlohmann::json& c) {
  return c.contains("bytes_hex") ? from_hex(c["bytes_hex"].get<std::string>())
                                 : c["text"].get<std::string>();
}

inline std::vector<TokenId> case_ids(const nlohmann::json& c) {
  return c["ids"].get<std::vector<TokenId>>();
}

}  // namespace align::testing
