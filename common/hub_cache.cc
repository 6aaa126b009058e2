#include "common/hub_cache.h"

#include <pwd.h>
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "common/output_dir.h"

namespace align {
namespace fs = std::filesystem;

namespace {

bool word_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
}

// One part of a repo id: [\w\-.]+ starting and ending with \w (the regex's \b on both sides).
bool repo_part(const std::string& s) {
  if (s.empty() || !word_char(s.front()) || !word_char(s.back())) return false;
  for (char c : s)
    if (!word_char(c) && c != '-' && c != '.') return false;
  return true;
}

bool valid_revision(const std::string& r) {
  if (r.empty() || r.front() == '/' || r.back() == '/') return false;
  for (char c : r)
    if (!word_char(c) && c != '-' && c != '.' && c != '/') return false;
  std::stringstream parts(r);
  for (std::string part; std::getline(parts, part, '/');)
    if (part.empty() || part == "." || part == "..") return false;
  return true;
}

// huggingface_hub's REGEX_COMMIT_HASH: ^[0-9a-f]{40}$.
bool commit_hash(const std::string& s) {
  if (s.size() != 40) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)) && (c < 'a' || c > 'f')) return false;
  return true;
}

std::string home_dir(const EnvLookup& env) {
  if (auto home = env("HOME")) return *home;
  const passwd* pw = ::getpwuid(::getuid());
  return pw && pw->pw_dir ? pw->pw_dir : "";
}

// Python's os.path.expanduser for "~" and "~/...", then os.path.expandvars ($NAME, ${NAME};
// unknown variables are left as written).
std::string expand(const std::string& path, const EnvLookup& env) {
  std::string s = path;
  if (s == "~" || s.rfind("~/", 0) == 0) s = home_dir(env) + s.substr(1);
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (s[i] != '$') {
      out += s[i++];
      continue;
    }
    size_t begin = i + 1, end = begin;
    const bool braced = begin < s.size() && s[begin] == '{';
    if (braced) {
      end = s.find('}', begin + 1);
      if (end == std::string::npos) {
        out += s.substr(i);
        break;
      }
      ++begin;
    } else {
      while (end < s.size() && word_char(s[end]))
        ++end;
    }
    const std::string name = s.substr(begin, end - begin);
    const size_t next = braced ? end + 1 : end;
    const std::optional<std::string> value = name.empty() ? std::nullopt : env(name);
    out += value ? *value : s.substr(i, next - i);  // a lone '$' stays
    i = next;
  }
  return out;
}

std::string read_ref(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // huggingface_hub writes the hash without a newline; one added by hand is not part of it.
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
    text.pop_back();
  return text;
}

// "/abs/runs/tiny" for "runs/tiny/" or "./runs/tiny".
std::string absolute_dir(const std::string& path) {
  fs::path p = fs::absolute(path).lexically_normal();
  if (p.filename().empty() && p.has_parent_path() && p != p.root_path()) p = p.parent_path();
  return p.string();
}

}  // namespace

std::optional<HubId> parse_hub_id(const std::string& text) {
  const size_t at = text.find('@');
  HubId id{text.substr(0, at), at == std::string::npos ? "" : text.substr(at + 1)};
  if (at != std::string::npos && !valid_revision(id.revision)) return std::nullopt;
  const size_t slash = id.repo.find('/');
  if (slash == std::string::npos || id.repo.size() > 96) return std::nullopt;
  if (id.repo.find("--") != std::string::npos || id.repo.find("..") != std::string::npos)
    return std::nullopt;
  if (!repo_part(id.repo.substr(0, slash)) || !repo_part(id.repo.substr(slash + 1)))
    return std::nullopt;
  return id;
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    const char* value = std::getenv(name.c_str());
    if (!value) return std::nullopt;
    return std::string(value);
  };
}

HubCacheRoot hub_cache_root(const EnvLookup& env) {
  HubCacheRoot root;
  if (auto v = env("HF_HUB_CACHE")) {
    root = {*v, "HF_HUB_CACHE"};
  } else if (auto legacy = env("HUGGINGFACE_HUB_CACHE")) {
    root = {*legacy, "HUGGINGFACE_HUB_CACHE"};
  } else if (auto home = env("HF_HOME")) {
    root = {*home + "/hub", "HF_HOME/hub"};
  } else if (auto xdg = env("XDG_CACHE_HOME")) {
    root = {*xdg + "/huggingface/hub", "XDG_CACHE_HOME/huggingface/hub"};
  } else {
    root = {"~/.cache/huggingface/hub", "the default, HF_HUB_CACHE and HF_HOME unset"};
  }
  root.path = expand(root.path, env);
  return root;
}

HubLookup find_in_hub_cache(const HubId& id, const std::string& root, HubRepoType type) {
  HubLookup out;
  std::string folder = (type == HubRepoType::kDataset ? "datasets--" : "models--") + id.repo;
  folder.replace(folder.find('/'), 1, "--");
  const fs::path repo = fs::path(root) / folder;
  std::error_code error;
  if (!fs::is_directory(repo, error)) {
    out.looked.push_back(repo.string() + " (no such directory)");
    return out;
  }
  const std::string revision = id.revision.empty() ? "main" : id.revision;
  std::string commit = revision;
  if (!commit_hash(revision)) {
    const fs::path ref = repo / "refs" / revision;
    if (!fs::is_regular_file(ref, error)) {
      out.looked.push_back(ref.string() + " (no such file)");
      return out;
    }
    commit = read_ref(ref);
    out.looked.push_back(ref.string() + " (" + commit + ")");
  }
  const fs::path snapshot = repo / "snapshots" / commit;
  if (commit.empty() || !fs::is_directory(snapshot, error)) {
    out.looked.push_back(snapshot.string() + " (no such directory)");
    return out;
  }
  out.dir = snapshot.string();
  return out;
}

std::string require_hub_snapshot(const std::string& text, const HubId& id, HubRepoType type,
                                 const std::string& key, const std::string& local,
                                 const EnvLookup& env) {
  const HubCacheRoot root = hub_cache_root(env);
  HubLookup found = find_in_hub_cache(id, root.path, type);
  if (found.dir) return *found.dir;
  const bool dataset = type == HubRepoType::kDataset;
  std::string message = key + ": " + text + ": neither " + local + " nor a Hugging Face " +
                        (dataset ? "dataset" : "model") +
                        " id in the local cache (nothing is downloaded); looked at:\n  " +
                        absolute_dir(text) + " (no such " +
                        (dataset ? "file or directory" : "directory") + ")\n  " + root.path +
                        " (the cache, from " + root.source + ")";
  for (const std::string& line : found.looked)
    message += "\n  " + line;
  message += "\ndownload it with: hf download " + id.repo +
             (dataset ? " --repo-type dataset" : "") +
             (id.revision.empty() ? "" : " --revision " + id.revision) +
             " (HF_HUB_CACHE or HF_HOME set as here)";
  throw InputError(message);
}

ModelLocation resolve_model_dir(const std::string& path, const std::string& key,
                                const EnvLookup& env) {
  std::error_code error;
  const std::optional<HubId> id =
      path.empty() || fs::exists(path, error) ? std::nullopt : parse_hub_id(path);
  if (!id) {  // a local path: a directory, or the error naming what it is instead
    require_directory(path, key);
    return {path, std::nullopt, absolute_dir(path)};
  }
  return {require_hub_snapshot(path, *id, HubRepoType::kModel, key, "a local directory", env), id,
          id->repo};
}

}  // namespace align
