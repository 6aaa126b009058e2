#include "eval/oracle_rates.h"

#include <string>

#include "common/error.h"

namespace align {

RateSummary rate_summary(const std::vector<int64_t>& counts, int64_t n, double confidence) {
  if (n < 1) {
    throw InputError("rate_summary: expected n >= 1 samples per item, got " + std::to_string(n));
  }
  RateSummary r;
  std::vector<double> per_item;
  SuccessCount counted_items;  // n == 1: one trial per item
  for (size_t i = 0; i < counts.size(); ++i) {
    const int64_t c = counts[i];
    if (c < 0 || c > n) {
      throw InputError("rate_summary: item " + std::to_string(i) + " has a count of " +
                       std::to_string(c) + ", expected 0 to n = " + std::to_string(n));
    }
    per_item.push_back(static_cast<double>(c) / static_cast<double>(n));
    counted_items.add(c > 0);
    r.counted += c;
  }
  r.items = static_cast<int64_t>(counts.size());
  r.samples = r.items * n;
  r.value = mean_interval(per_item, confidence);
  if (n == 1) {
    r.has_wilson = true;
    r.wilson = wilson_interval(counted_items, normal_quantile_two_sided(confidence));
  }
  return r;
}

nlohmann::json to_json(const RateSummary& rate, const std::string& count_key) {
  nlohmann::json j = {{"items", rate.items},     {"samples", rate.samples},
                      {count_key, rate.counted}, {"mean", rate.value.mean},
                      {"low", rate.value.low},   {"high", rate.value.high}};
  if (rate.has_wilson) {
    j["wilson_low"] = rate.wilson.low;
    j["wilson_high"] = rate.wilson.high;
  }
  return j;
}

}  // namespace align
