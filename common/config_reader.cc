#include "common/config_reader.h"

#include <algorithm>
#include <vector>

#include "common/atomic_file.h"
#include "common/json_parse.h"

namespace align {

const nlohmann::json ConfigReader::kEmpty = nlohmann::json::object();

namespace {

void differences(const nlohmann::json& a, const nlohmann::json& b, const std::string& path,
                 const std::set<std::string>& allowed, std::vector<std::string>& out) {
  if (allowed.count(path)) return;
  if (a.is_object() && b.is_object()) {
    for (const auto& [key, value] : a.items()) {
      const std::string sub = path.empty() ? key : path + "." + key;
      if (!b.contains(key)) {
        if (!allowed.count(sub)) out.push_back(sub);
      } else {
        differences(value, b.at(key), sub, allowed, out);
      }
    }
    for (const auto& [key, value] : b.items()) {
      const std::string sub = path.empty() ? key : path + "." + key;
      if (!a.contains(key) && !allowed.count(sub)) out.push_back(sub);
    }
    return;
  }
  if (a != b) out.push_back(path.empty() ? "(the whole config)" : path);
}

}  // namespace

std::vector<std::string> config_differences(const nlohmann::json& a, const nlohmann::json& b,
                                            const std::set<std::string>& allowed) {
  std::vector<std::string> out;
  differences(a, b, "", allowed, out);
  return out;
}

void check_config(bool ok, const std::string& source, const std::string& field,
                  const std::string& what) {
  if (!ok) throw InputError(source + ": " + field + ": " + what);
}

nlohmann::json load_config_file(const std::string& path) {
  const nlohmann::json j = parse_json(read_file(path), path, {/*reject_duplicate_keys=*/true});
  if (!j.is_object()) throw InputError(path + ": a config must be a JSON object of sections");
  return j;
}

void apply_override(nlohmann::json& j, const std::string& assignment) {
  const size_t eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw InputError("--set " + assignment + ": expected section.key=value");
  }
  const std::string path = assignment.substr(0, eq);
  const std::string text = assignment.substr(eq + 1);
  nlohmann::json value;
  try {
    value = parse_json(text, "--set " + assignment);
  } catch (const InputError&) {
    value = text;
  }
  nlohmann::json* node = &j;
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string key = path.substr(start, dot == std::string::npos ? dot : dot - start);
    if (key.empty()) throw InputError("--set " + assignment + ": empty key in '" + path + "'");
    if (!node->is_object()) {
      throw InputError("--set " + assignment + ": '" + path.substr(0, start - 1) +
                       "' is not a section");
    }
    if (dot == std::string::npos) {
      (*node)[key] = value;
      return;
    }
    node = &(*node)[key];
    if (node->is_null()) *node = nlohmann::json::object();
    start = dot + 1;
  }
}

ConfigReader::ConfigReader(const nlohmann::json& object, std::string source, std::string path)
    : ConfigReader(object, std::move(source), std::move(path),
                   std::make_shared<std::set<std::string>>()) {}

ConfigReader::ConfigReader(const nlohmann::json& object, std::string source, std::string path,
                           std::shared_ptr<std::set<std::string>> known)
    : object_(object.is_null() ? kEmpty : object),
      source_(std::move(source)),
      path_(std::move(path)),
      seen_(std::make_shared<std::set<std::string>>()),
      known_(std::move(known)) {
  if (!object_.is_object()) {
    throw InputError(source_ + ": " + (path_.empty() ? "the config" : path_) +
                     " must be an object, found " + json_excerpt(object_));
  }
}

ConfigReader ConfigReader::section(const std::string& key) {
  known_->insert(full(key));
  if (!object_.contains(key)) return ConfigReader(kEmpty, source_, full(key), known_);
  seen_->insert(key);
  return ConfigReader(object_.at(key), source_, full(key), known_);
}

namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] != b[j - 1] ? 1 : 0)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

std::string last_part(const std::string& path) {
  const size_t dot = path.rfind('.');
  return dot == std::string::npos ? path : path.substr(dot + 1);
}

// The known path most like `unknown`: by the whole path, or by its last part (a key put in the
// wrong section), close enough to be a typo.
std::string closest(const std::string& unknown, const std::set<std::string>& known) {
  std::string best;
  size_t best_distance = std::string::npos;
  for (const std::string& k : known) {
    const size_t d =
        std::min(edit_distance(unknown, k), edit_distance(last_part(unknown), last_part(k)));
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  const size_t limit = std::max<size_t>(2, last_part(unknown).size() / 3);
  return best_distance <= limit ? best : "";
}

}  // namespace

void ConfigReader::finish() const {
  std::vector<std::string> unknown;
  for (const auto& [key, value] : object_.items()) {
    if (!seen_->count(key)) unknown.push_back(full(key));
  }
  if (unknown.empty()) return;
  std::string message = source_ + ": unknown config key";
  message += unknown.size() > 1 ? "s " : " ";
  for (size_t i = 0; i < unknown.size(); ++i) {
    message += (i ? ", " : "") + unknown[i];
    const std::string suggestion = closest(unknown[i], *known_);
    if (!suggestion.empty()) message += " (did you mean " + suggestion + "?)";
  }
  throw InputError(message);
}

}  // namespace align
