// The token view of `align report`: one analysed PTS completion with every token coloured by the
// measured p(success | prompt + completion through this token), pivotal tokens marked (like Figure
// 3 of the Phi-4 report). The estimates come from completions.jsonl (see docs/pts.md).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace align {

struct PrefixEstimate {
  int64_t prefix_length = 0;  // completion tokens in the prefix
  double p = 0;               // estimated p(success | prompt + prefix)
  int64_t n = 0;              // rollouts; 0 = exact (a graded completion)
};

struct ShownCompletion {
  std::string query_id;
  std::string prompt;  // the query's prompt text when known (shown above the tokens), else empty
  int64_t completion_index = 0;
  std::vector<std::string> token_texts;  // [T]
  bool success = false;
  std::vector<PrefixEstimate> estimates;
  std::vector<int64_t> pivot_positions;  // token indices
};

// One line of completions.jsonl; throws (json or InputError) on missing fields or wrong types.
ShownCompletion parse_shown_completion(const nlohmann::json& record);

// p(success) after each prefix length 0..T: measured where an estimate exists, otherwise the last
// measured value at a shorter prefix carried forward (NaN before the first estimate).
struct PrefixProbability {
  double p = 0;
  int64_t n = 0;
  bool measured = false;
};
std::vector<PrefixProbability> prefix_probabilities(int64_t num_tokens,
                                                    const std::vector<PrefixEstimate>& estimates);

// A background colour for p in [0, 1] on a red -> yellow -> green scale, paler for a carried
// (unmeasured) value; grey for NaN.
std::string probability_color(double p, bool measured = true);

// The legend: the colour scale and what the outlines and faded tokens mean.
std::string token_legend_html();

// One completion: a header line and one <span class="tok ..."> per token (token k coloured by the
// probability at prefix length k + 1; newlines shown as U+21B5 followed by a line break).
std::string token_view_html(const ShownCompletion& c);

}  // namespace align
