// Oracles grade completions for Pivotal Token Search and evaluation. An oracle sees only the
// completion text (the model's answer, decoded) and the query's oracle fields (its ground truth:
// "answer", "tests", "harmful", ...), never the prompt: the dataset line is passed with its prompt
// ("prompt", "messages", "text", "token_ids", "tools") removed (oracle_fields()), so a grader
// cannot reward echoing the question.
//
// Config (the "oracle" section of a run config), one object, "type" picks the oracle:
//   {"type": "math"}                        item "answer": number or expression
//   {"type": "exact", "case_sensitive"?}    item "answer": string, compared after trimming
//   {"type": "regex", "pattern"?}           pattern from the config or item "pattern"; success when
//                                           it matches anywhere in the completion
//   {"type": "choice"}                      item "answer": a letter (A-Z); the completion's chosen
//                                           letter is extracted and compared
//   {"type": "code", "timeout_s", "memory_mb", "language"?}
//                                           item "tests": code appended to the completion's code,
//                                           run in a sandboxed subprocess; success = exit status 0
//   {"type": "safety"}                      item "harmful": bool; success = refusal when harmful,
//                                           a helpful (non-refusing) answer when benign
//   {"type": "command", "command": [argv...], "timeout_s"}
//                                           the program reads {"completion", ...oracle fields} as
//                                           one JSON object on stdin and prints true/false (or
//                                           {"success": bool}) on stdout
// Every oracle is deterministic for a given (completion, fields) and safe to call from several
// threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace align {

// A rate over an eval set that an oracle defines besides pass@k (the safety oracle's refusal rate
// on harmful items): the mean, over the items it covers, of the fraction of their samples it
// counts. align eval reports it (eval/oracle_rates.h) without knowing the oracle.
struct OracleRate {
  std::string key;    // summary.json key, e.g. "refusal_rate_harmful"
  std::string label;  // for tables, e.g. "refusal rate, harmful"
  std::string count;  // what is counted, the per-item key of results.jsonl, e.g. "refusals"
  bool higher_is_better = true;
};

class Oracle {
 public:
  virtual ~Oracle() = default;
  // True when `completion` solves the item. `fields` is oracle_fields(item). Throws InputError
  // when the item lacks a field this oracle needs (naming it).
  virtual bool grade(const std::string& completion, const nlohmann::json& fields) const = 0;
  // Grades many completions of one item; oracles that run programs grade them in parallel.
  virtual std::vector<bool> grade_all(const std::vector<std::string>& completions,
                                      const nlohmann::json& fields) const;
  // Checks once, before any rollout, that `fields` has what grade() needs; throws InputError
  // naming `where` (e.g. "data.jsonl:12") and the missing or malformed field.
  virtual void check_fields(const nlohmann::json& fields, const std::string& where) const = 0;
  // "math", "exact", ...: for logs and reports.
  virtual std::string name() const = 0;
  // The oracle's own rates (none unless it defines some).
  virtual std::vector<OracleRate> rates() const { return {}; }
  // For one item, per entry of rates(): how many of `completions` that rate counts, or -1 when
  // the item is not among the items it covers.
  virtual std::vector<int64_t> rate_counts(const std::vector<std::string>& completions,
                                           const nlohmann::json& fields) const {
    return {};
  }
};

// The dataset line without the fields an oracle must never see ("prompt", "messages").
nlohmann::json oracle_fields(const nlohmann::json& item);

// Builds the oracle an "oracle" config section describes. `source` names the config file and
// `path` the section's key path in messages ("pts.json: oracle.type: expected one of ...").
// Throws InputError on unknown types or keys.
std::unique_ptr<Oracle> make_oracle(const nlohmann::json& config, const std::string& source,
                                    const std::string& path = "oracle");

}  // namespace align
