// Rates an oracle defines over an eval set besides pass@k (Oracle::rates(), oracles/oracle.h; the
// safety oracle's refusal rate on harmful items and over-refusal on benign ones):
//   rate = mean over the items it covers of count_i / n
// where count_i is how many of item i's n samples the oracle counts (Oracle::rate_counts). Every
// item has the same n, so the mean is also the pooled count / samples. The interval is pass@k's:
// mean_interval over the per-item values (the item is the unit of replication, eval/pass_at_k.h);
// with n == 1 each item is one Bernoulli trial and the rate also gets a Wilson interval over
// items.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "eval/pass_at_k.h"
#include "eval/success_estimate.h"

namespace align {

struct RateSummary {
  int64_t items = 0;    // items the rate covers
  int64_t samples = 0;  // their completions: items * n
  int64_t counted = 0;  // completions the oracle counted
  MeanInterval value;   // mean of count_i / n over the items, with its interval
  bool has_wilson = false;
  Interval wilson;  // n == 1: Wilson interval of counted / items
};

// `counts`: one per covered item, each in [0, n]. Throws InputError otherwise or when n < 1.
RateSummary rate_summary(const std::vector<int64_t>& counts, int64_t n, double confidence);

// {"items", "samples", <count_key>, "mean", "low", "high"[, "wilson_low", "wilson_high"]}.
nlohmann::json to_json(const RateSummary& rate, const std::string& count_key);

}  // namespace align
