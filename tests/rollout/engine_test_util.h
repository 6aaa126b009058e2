// Helpers shared by the engine tests (engine_test.cc, longrope_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "rollout/engine.h"

namespace align::testing {

inline std::vector<TokenId> ids(const std::vector<int64_t>& v) {
  return {v.begin(), v.end()};
}

// Pages of 4 tokens (so prompts span several, and forks share and copy pages), 4,096 tokens.
inline EngineOptions small_pages(bool reuse = true) {
  EngineOptions o;
  o.page_size = 4;
  o.kv_budget_tokens = 4096;
  o.reuse_prefixes = reuse;
  return o;
}

// Same tokens and finish reasons; log-probs within `tol`.
inline void expect_same(const std::vector<std::vector<GeneratedSample>>& a,
                        const std::vector<std::vector<GeneratedSample>>& b, double tol = 1e-4) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t r = 0; r < a.size(); ++r) {
    ASSERT_EQ(a[r].size(), b[r].size()) << "request " << r;
    for (size_t s = 0; s < a[r].size(); ++s) {
      EXPECT_EQ(a[r][s].tokens, b[r][s].tokens) << "request " << r << " sample " << s;
      EXPECT_EQ(a[r][s].finish_reason, b[r][s].finish_reason);
      ASSERT_EQ(a[r][s].logprobs.size(), b[r][s].logprobs.size());
      for (size_t i = 0; i < a[r][s].logprobs.size(); ++i)
        EXPECT_NEAR(a[r][s].logprobs[i], b[r][s].logprobs[i], tol) << r << "/" << s << "/" << i;
    }
  }
}

}  // namespace align::testing
