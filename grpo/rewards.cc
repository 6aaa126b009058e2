#include "grpo/rewards.h"

#include <set>

#include "common/config_reader.h"
#include "common/error.h"

namespace align {
namespace {

class RewardFieldCheck : public Oracle {
 public:
  explicit RewardFieldCheck(std::vector<std::shared_ptr<const Oracle>> oracles)
      : oracles_(std::move(oracles)) {}
  bool grade(const std::string&, const nlohmann::json&) const override {
    throw Error("RewardFieldCheck grades nothing");
  }
  void check_fields(const nlohmann::json& fields, const std::string& where) const override {
    for (const auto& o : oracles_)
      o->check_fields(fields, where);
  }
  std::string name() const override { return "grpo rewards"; }

 private:
  std::vector<std::shared_ptr<const Oracle>> oracles_;
};

double overlong_punishment(int64_t length, int64_t max_length, int64_t cache) {
  if (length <= max_length - cache) return 0.0;
  if (length <= max_length)
    return static_cast<double>(max_length - cache - length) / static_cast<double>(cache);
  return -1.0;
}

}  // namespace

std::vector<Reward> make_rewards(const nlohmann::json& list, const nlohmann::json& oracle,
                                 int64_t max_new_tokens, const std::string& source) {
  if (!list.is_array() || list.empty()) {
    throw InputError(source + ": grpo.rewards: expected a non-empty list of reward functions");
  }
  std::vector<Reward> out;
  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = "grpo.rewards[" + std::to_string(i) + "]";
    if (!list[i].is_object()) throw InputError(source + ": " + at + ": expected an object");
    ConfigReader r(list[i], source, at);
    std::string type;
    r.require("type", type);
    Reward w;
    r.get("name", w.name);
    if (type == "oracle") {
      w.kind = Reward::Kind::kOracle;
      nlohmann::json own;
      r.get("oracle", own);
      const nlohmann::json& config = own.is_null() ? oracle : own;
      if (!config.is_object() || config.empty()) {
        throw InputError(source + ": " + at +
                         ": an oracle reward needs the oracle section, or its own \"oracle\": "
                         "{\"type\": ...} (docs/oracles.md)");
      }
      w.oracle = make_oracle(config, source, own.is_null() ? "oracle" : at + ".oracle");
      if (w.name.empty()) w.name = w.oracle->name();
    } else if (type == "format") {
      w.kind = Reward::Kind::kFormat;
      std::string pattern;
      r.require("pattern", pattern);
      if (pattern.empty()) throw InputError(source + ": " + at + ".pattern: expected a regex");
      w.oracle = make_oracle({{"type", "regex"}, {"pattern", pattern}}, source, at);
      if (w.name.empty()) w.name = "format";
    } else if (type == "overlong") {
      w.kind = Reward::Kind::kOverlong;
      w.max_length = max_new_tokens;
      r.require("cache", w.cache);
      r.get("max_length", w.max_length);
      if (w.cache < 1 || w.cache > w.max_length) {
        throw InputError(source + ": " + at + ".cache: expected 1 <= cache <= max_length (" +
                         std::to_string(w.max_length) + "), found " + std::to_string(w.cache));
      }
      if (w.name.empty()) w.name = "soft_overlong_punishment";
    } else {
      throw InputError(source + ": " + at + ".type: expected oracle, format or overlong, found '" +
                       type + "'");
    }
    r.finish();
    if (!names.insert(w.name).second) {
      throw InputError(source + ": " + at + ".name: " + w.name +
                       " is taken by another reward (names must be unique: each is logged as "
                       "rewards/<name>/mean)");
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::vector<std::vector<double>> score_rewards(const std::vector<Reward>& rewards,
                                               const std::vector<std::string>& texts,
                                               const std::vector<int64_t>& lengths,
                                               const nlohmann::json& fields) {
  std::vector<std::vector<double>> out(texts.size(), std::vector<double>(rewards.size(), 0.0));
  for (size_t k = 0; k < rewards.size(); ++k) {
    const Reward& w = rewards[k];
    if (w.kind == Reward::Kind::kOverlong) {
      for (size_t i = 0; i < texts.size(); ++i)
        out[i][k] = overlong_punishment(lengths[i], w.max_length, w.cache);
      continue;
    }
    const std::vector<bool> pass = w.oracle->grade_all(texts, fields);
    for (size_t i = 0; i < texts.size(); ++i)
      out[i][k] = pass[i] ? 1.0 : 0.0;
  }
  return out;
}

std::unique_ptr<Oracle> reward_field_check(const std::vector<Reward>& rewards) {
  std::vector<std::shared_ptr<const Oracle>> oracles;
  for (const Reward& w : rewards)
    if (w.kind == Reward::Kind::kOracle) oracles.push_back(w.oracle);
  return std::make_unique<RewardFieldCheck>(std::move(oracles));
}

}  // namespace align
