#include "pts/pts_config.h"

#include "common/config_fields.h"
#include "common/error.h"

namespace align {

PtsOptions PtsConfig::search_options(std::vector<TokenId> stop_token_ids) const {
  PtsOptions o = pts.search;
  o.sampling = sampling.params(0);  // rollout seeds come from pts.seed (pivotal_search.h)
  o.max_new_tokens = sampling.max_new_tokens;
  o.stop_token_ids = std::move(stop_token_ids);
  return o;
}

PtsConfig parse_pts_config(const nlohmann::json& j, const std::string& source,
                           const std::string& key_prefix) {
  PtsConfig c;
  ConfigReader root(j, source, key_prefix);
  read_fields(root, c);
  check_query_sections(c, source);
  try {
    validate(c.search_options({}));
  } catch (const InputError& e) {
    throw InputError(source + ": " + e.what());
  }
  check_config(c.pts.queries_per_batch >= 1, source, "pts.queries_per_batch",
               "expected at least 1");
  return c;
}

nlohmann::json to_json(const PtsConfig& c) {
  return to_json_fields(c);
}

}  // namespace align
