// Shared by the SmolLM2 tests (docs/smollm2.md): a fixture that fails, never skips, when the
// folder of tools/smollm2_folder.sh is missing, the golden files of tools/golden_smollm2.py, and
// one way to print a measured error.
#pragma once

#include <gtest/gtest.h>
#include <torch/types.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace align::testing {

inline ::testing::AssertionResult smollm2_folder_exists(const std::string& dir) {
  for (const char* file : {"config.json", "model.safetensors", "tokenizer.json"}) {
    if (!std::filesystem::exists(dir + "/" + file)) {
      return ::testing::AssertionFailure()
             << "the SmolLM2 test model is missing (" << dir << "/" << file
             << " not found): run tools/smollm2_folder.sh (scripts/test.sh runs it), or set "
                "ALIGN_SMOLLM2_DIR to the folder it writes";
    }
  }
  return ::testing::AssertionSuccess();
}

// Base of every SmolLM2 test suite: the folder must exist.
class SmolLM2Folder : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(smollm2_folder_exists(dir_)); }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_ = smollm2_dir();
};

inline nlohmann::json smollm2_golden(const std::string& name) {
  std::ifstream in(golden_path("smollm2/" + name));
  if (!in) throw std::runtime_error("cannot read " + golden_path("smollm2/" + name));
  return nlohmann::json::parse(in);
}

// [1, T] int64 from token ids.
inline torch::Tensor token_row(const std::vector<int64_t>& ids) {
  return torch::tensor(ids, torch::kInt64).unsqueeze(0);
}

// "[ measured ] what: value" on stdout (ctest --output-on-failure and -V show it).
inline void print_measured(const std::string& what, double value) {
  std::printf("[ measured ] %s: %.3g\n", what.c_str(), value);
  std::fflush(stdout);
}

}  // namespace align::testing
