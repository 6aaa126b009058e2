#include "data/dataset_files.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>
#include <set>

#include "common/error.h"

namespace align {
namespace {

namespace fs = std::filesystem;

// datasets/data_files.py (datasets 5.2.0, fsspec >= 2023.12.0): the patterns that find a repo's
// splits when its README declares no configs, tried in this order.
const char* const kShardSuffix = "-[0-9][0-9][0-9][0-9][0-9]-of-[0-9][0-9][0-9][0-9][0-9]*.*";
const std::string kShardedPattern = std::string("data/*") + kShardSuffix;
const char* const kSplitSeparators = "[-._ 0-9]";  // NON_WORDS_CHARS as a class

const std::vector<std::pair<std::string, std::vector<std::string>>>& split_keywords() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> keywords = {
      {"train", {"train", "training"}},
      {"validation", {"validation", "valid", "dev", "val"}},
      {"test", {"test", "testing", "eval", "evaluation"}}};
  return keywords;
}

using SplitPatterns = std::vector<std::pair<std::string, std::vector<std::string>>>;

// KEYWORDS_IN_{DIR_NAME,FILENAME}_BASE_PATTERNS with each split's keywords filled in.
SplitPatterns keyword_patterns(const std::vector<std::string>& bases) {
  SplitPatterns out;
  for (const auto& [split, keywords] : split_keywords()) {
    std::vector<std::string> patterns;
    for (const std::string& keyword : keywords) {
      for (std::string p : bases) {
        for (size_t at; (at = p.find("{keyword}")) != std::string::npos;)
          p.replace(at, 9, keyword);
        for (size_t at; (at = p.find("{sep}")) != std::string::npos;)
          p.replace(at, 5, kSplitSeparators);
        patterns.push_back(p);
      }
    }
    out.emplace_back(split, patterns);
  }
  return out;
}

// ALL_DEFAULT_PATTERNS: the first of these dicts with a split that names a file wins.
const std::vector<SplitPatterns>& default_patterns() {
  static const std::vector<SplitPatterns> all = {
      {{"logs", {"**/*.eval"}}},
      {{"test", {"**/task.toml", "**/instruction.md"}}},
      keyword_patterns({"**/{keyword}/**", "**/{keyword}{sep}*/**", "**/*{sep}{keyword}/**",
                        "**/*{sep}{keyword}{sep}*/**"}),
      keyword_patterns({"**/{keyword}{sep}*", "**/*{sep}{keyword}{sep}*"}),
      {{"train", {"**"}}}};
  return all;
}

// FILES_TO_IGNORE, and hidden files or folders (resolve_pattern skips those a pattern does not
// name; none of the patterns above names one).
bool ignored(const std::string& relative) {
  static const std::set<std::string> names = {"README.md",         "config.json",
                                              "dataset_info.json", "dataset_infos.json",
                                              "dummy_data.zip",    "dataset_dict.json"};
  const fs::path p(relative);
  if (names.count(p.filename().string())) return true;
  for (const fs::path& part : p)
    if (part.string().size() > 1 && part.string()[0] == '.') return true;
  return false;
}

// One path part against one pattern part: '*', '?', [...] and [!...] as fnmatch.
bool match_part(const std::string& p, size_t pi, const std::string& s, size_t si) {
  while (pi < p.size()) {
    const char c = p[pi];
    if (c == '*') {
      for (size_t k = si; k <= s.size(); ++k)
        if (match_part(p, pi + 1, s, k)) return true;
      return false;
    }
    if (si >= s.size()) return false;
    if (c == '[') {
      size_t end = pi + 1;
      if (end < p.size() && p[end] == '!') ++end;
      if (end < p.size() && p[end] == ']') ++end;
      end = p.find(']', end);
      if (end == std::string::npos) {  // no closing bracket: a literal '['
        if (s[si] != '[') return false;
        ++pi, ++si;
        continue;
      }
      size_t k = pi + 1;
      const bool negate = p[k] == '!';
      if (negate) ++k;
      bool found = false;
      while (k < end) {
        if (k + 2 < end && p[k + 1] == '-') {  // a range a-z ('-' first or last is literal)
          found = found || (p[k] <= s[si] && s[si] <= p[k + 2]);
          k += 3;
        } else {
          found = found || p[k] == s[si];
          ++k;
        }
      }
      if (found == negate) return false;
      pi = end + 1;
      ++si;
      continue;
    }
    if (c != '?' && c != s[si]) return false;
    ++pi, ++si;
  }
  return si == s.size();
}

std::vector<std::string> split_path(const std::string& path) {
  std::vector<std::string> parts;
  size_t begin = 0;
  for (size_t end; (end = path.find('/', begin)) != std::string::npos; begin = end + 1)
    parts.push_back(path.substr(begin, end - begin));
  parts.push_back(path.substr(begin));
  return parts;
}

bool match_parts(const std::vector<std::string>& p, size_t pi, const std::vector<std::string>& s,
                 size_t si) {
  if (pi == p.size()) return si == s.size();
  if (p[pi] == "**") {
    // A trailing "**" stands for the files below a folder: at least one part (fsspec's glob, as
    // datasets resolves "**/valid[-._ 0-9]*/**": a file valid.parquet is not in it).
    const size_t least = pi + 1 == p.size() ? 1 : 0;
    for (size_t k = si + least; k <= s.size(); ++k)
      if (match_parts(p, pi + 1, s, k)) return true;
    return false;
  }
  return si < s.size() && match_part(p[pi], 0, s[si], 0) && match_parts(p, pi + 1, s, si + 1);
}

std::vector<std::string> matching(const std::string& pattern,
                                  const std::vector<std::string>& files) {
  std::vector<std::string> out;
  for (const std::string& f : files)
    if (glob_match(pattern, f)) out.push_back(f);
  std::sort(out.begin(), out.end());  // fsspec's glob returns paths sorted
  return out;
}

// The files of `folder` (recursively, links followed), relative and '/'-separated, not ignored.
std::vector<std::string> list_files(const std::string& folder) {
  std::vector<std::string> out;
  for (auto it = fs::recursive_directory_iterator(folder,
                                                  fs::directory_options::follow_directory_symlink);
       it != fs::recursive_directory_iterator(); ++it) {
    std::error_code error;
    if (!it->is_regular_file(error)) continue;
    const std::string relative = fs::relative(it->path(), folder).generic_string();
    if (!ignored(relative)) out.push_back(relative);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Where the shard number starts in a file name that matches kShardedPattern: the last
// "-NNNNN-of-NNNN" (datasets' string_to_dict takes the split as a greedy ".+").
size_t shard_number_at(const std::string& name) {
  auto digits = [&](size_t at, size_t n) {
    if (at + n > name.size()) return false;
    for (size_t k = at; k < at + n; ++k)
      if (!std::isdigit(static_cast<unsigned char>(name[k]))) return false;
    return true;
  };
  for (size_t at = name.size(); at-- > 1;) {
    if (name[at] == '-' && digits(at + 1, 5) && name.compare(at + 6, 4, "-of-") == 0 &&
        digits(at + 10, 4))
      return at;
  }
  return 0;
}

// datasets' _split_re: ^\w+(\.\w+)*$.
bool split_name(const std::string& s) {
  if (s.empty() || s.front() == '.' || s.back() == '.' || s.find("..") != std::string::npos)
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

// The split `split` of `folder`, as files to read. `shown` names the folder in errors.
DatasetFiles folder_split(const std::string& folder, const std::string& split,
                          const std::string& shown) {
  const std::vector<DatasetSplit> splits = dataset_splits(list_files(folder));
  std::string names;
  for (const DatasetSplit& s : splits) {
    names += (names.empty() ? "" : ", ") + s.name;
    if (s.name != split) continue;
    DatasetFiles out{{}, split};
    for (const std::string& f : s.files) {
      if (!ends_with(f, ".parquet") && !ends_with(f, ".jsonl")) {
        throw InputError(shown + ": split " + split + ": " + f +
                         " is neither Parquet (.parquet) nor JSON Lines (.jsonl), which align "
                         "reads (convert it, e.g. with datasets' to_parquet)");
      }
      out.files.push_back((fs::path(folder) / f).string());
    }
    return out;
  }
  throw InputError(shown + ": no split \"" + split + "\" (" +
                   (names.empty() ? std::string("no data files") : "splits: " + names) +
                   "; choose one with :SPLIT)");
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& path) {
  return match_parts(split_path(pattern), 0, split_path(path), 0);
}

std::vector<DatasetSplit> dataset_splits(const std::vector<std::string>& relative_files) {
  std::vector<DatasetSplit> out;
  // "data/{split}-00000-of-00001.parquet": the split is the file name before the shard number.
  const std::vector<std::string> sharded = matching(kShardedPattern, relative_files);
  if (!sharded.empty()) {
    std::map<std::string, std::vector<std::string>> by_split;
    for (const std::string& f : sharded) {
      const std::string name = fs::path(f).filename().string();
      const std::string split = name.substr(0, shard_number_at(name));
      if (!split_name(split)) {
        throw InputError(f + ": the split name \"" + split +
                         "\" is not one datasets accepts (letters, digits, _ and inner dots)");
      }
      if (!by_split.count(split))
        by_split[split] = matching("data/" + split + kShardSuffix, relative_files);
    }
    for (const std::string known : {"train", "validation", "test"}) {
      auto it = by_split.find(known);
      if (it == by_split.end()) continue;
      out.push_back({known, it->second});
      by_split.erase(it);
    }
    for (auto& [name, files] : by_split)
      out.push_back({name, files});
    return out;
  }
  for (const SplitPatterns& patterns : default_patterns()) {
    for (const auto& [split, globs] : patterns) {
      DatasetSplit s{split, {}};
      for (const std::string& glob : globs)
        for (const std::string& f : matching(glob, relative_files))
          if (std::find(s.files.begin(), s.files.end(), f) == s.files.end()) s.files.push_back(f);
      if (!s.files.empty()) out.push_back(std::move(s));
    }
    if (!out.empty()) return out;
  }
  return out;
}

DatasetFiles resolve_dataset_files(const std::string& source, const std::string& key,
                                   const EnvLookup& env) {
  if (source.empty()) throw InputError(key + ": empty (expected a file, a folder or a dataset id)");
  std::error_code error;
  if (fs::is_regular_file(source, error)) return {{source}, ""};
  if (fs::is_directory(source, error)) return folder_split(source, "train", key + ": " + source);
  // FOLDER:SPLIT or ID:SPLIT.
  const size_t colon = source.rfind(':');
  std::string base = source, split = "train";
  if (colon != std::string::npos && split_name(source.substr(colon + 1))) {
    base = source.substr(0, colon);
    split = source.substr(colon + 1);
    if (fs::is_directory(base, error)) return folder_split(base, split, key + ": " + source);
  }
  if (fs::exists(source, error))
    throw InputError(key + ": " + source + ": neither a file nor a folder");
  const std::optional<HubId> id = parse_hub_id(base);
  if (!id) throw IoError(key + ": " + source + ": no such file or folder");
  const std::string snapshot =
      require_hub_snapshot(base, *id, HubRepoType::kDataset, key, "a local file or folder", env);
  return folder_split(snapshot, split, key + ": " + source + " (" + snapshot + ")");
}

}  // namespace align
