// Hugging Face hub ids ("org/name", "org/name@revision") resolved offline from the local cache,
// exactly as huggingface_hub's snapshot_download does with HF_HUB_OFFLINE=1 (docs/hub_cache.md):
//
//   root      $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, else
//             $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub (~ and $VAR expanded)
//   repo      root/models--{org}--{name} (datasets: root/datasets--{org}--{name})
//   commit    the revision itself when it is a 40-hex commit hash, else the text of
//             repo/refs/{revision} (revision "main" when none is given)
//   directory repo/snapshots/{commit}/
//
// Pure filesystem: nothing is downloaded. An existing local directory always wins over a hub id.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace align {

// A hub id as written: "org/name" or "org/name@revision".
struct HubId {
  std::string repo;      // "org/name"
  std::string revision;  // after '@'; empty: none given ("main" is looked up)
};

// The id when `text` looks like one: two parts of [A-Za-z0-9_.-] (each starting and ending with
// a letter, digit or '_', no "--" or "..", at most 96 characters, huggingface_hub's
// validate_repo_id) joined by '/', optionally "@revision" (no "..", no leading '/'). Else nullopt.
std::optional<HubId> parse_hub_id(const std::string& text);

// The value of an environment variable, nullopt when unset (set but empty is "").
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
// The process environment.
EnvLookup process_env();

// The cache folder and how it was chosen ("HF_HUB_CACHE", "HF_HOME", "~/.cache", ...).
struct HubCacheRoot {
  std::string path;
  std::string source;
};
HubCacheRoot hub_cache_root(const EnvLookup& env);

// What a hub repo holds: the cache keeps each type in its own folders ("models--org--name",
// "datasets--org--name"), as huggingface_hub's repo_folder_name does.
enum class HubRepoType { kModel, kDataset };

// Where a hub id was looked for: the snapshot directory when found, and every path looked at,
// each as "path (what was found)".
struct HubLookup {
  std::optional<std::string> dir;
  std::vector<std::string> looked;
};
HubLookup find_in_hub_cache(const HubId& id, const std::string& root,
                            HubRepoType type = HubRepoType::kModel);

// The snapshot directory of `id` in the cache. When it is not there, throws InputError
// "<key>: <text>: neither <local> nor a Hugging Face hub id in the local cache ..." listing the
// local path, the cache root and how it was chosen, every path looked at, and the command that
// downloads it (hf download org/name [--repo-type dataset] [--revision rev]).
std::string require_hub_snapshot(const std::string& text, const HubId& id, HubRepoType type,
                                 const std::string& key, const std::string& local,
                                 const EnvLookup& env = process_env());

// What a model argument names: a local directory, or a hub id's snapshot in the cache.
struct ModelLocation {
  std::string dir;           // the directory to read
  std::optional<HubId> hub;  // set when `dir` came from the cache

  // What a PEFT adapter records as base_model_name_or_path: the hub repo ("org/name", its
  // revision goes to adapter_config.json's "revision"), else the local directory made absolute
  // when resolved.
  std::string name_or_path;
};

// `path` itself when it is a directory; else, when it looks like a hub id, its snapshot in the
// cache. Throws InputError "<key>: <path>: ..." for an empty path, a file, or a path that is
// neither a directory nor a cached hub id: the message lists every path looked at and how to
// download the model (hf download org/name).
ModelLocation resolve_model_dir(const std::string& path, const std::string& key,
                                const EnvLookup& env = process_env());

}  // namespace align
