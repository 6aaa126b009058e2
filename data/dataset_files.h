// Which files a dataset argument (data.train, data.eval, data.path, eval.queries) names, in the
// order they are read (docs/datasets.md):
//
//   an existing file        itself (JSONL, or Parquet when it ends in .parquet)
//   an existing folder      its split "train", chosen as load_dataset(folder) chooses it
//   FOLDER:SPLIT            the folder's split SPLIT
//   ORG/NAME[@REV][:SPLIT]  a Hugging Face dataset in the local hub cache (common/hub_cache.h:
//                           datasets--ORG--NAME/snapshots/<commit>/, the same roots, refs and
//                           errors as model ids; nothing is downloaded), split SPLIT (train when
//                           none is given)
//
// A split's files follow the `datasets` package's rules for a folder or repo without a configs
// section (datasets/data_files.py): first "data/{split}-NNNNN-of-NNNNN*.*" (what push_to_hub
// writes: data/train-00000-of-00002.parquet), else the first of these that names any file:
// split keywords in folder names (train/, training/, validation/, valid/, dev/, val/, test/,
// testing/, eval/, evaluation/, also with a prefix or suffix after -._ or digits), in file names
// (train-*.parquet, my_test.parquet), else every file is train. Files are sorted per pattern,
// hidden files and folders and README.md, config.json, dataset_info.json, dataset_infos.json,
// dummy_data.zip, dataset_dict.json are ignored. Of a split's files, .parquet and .jsonl are
// read; another kind is an error naming it.
#pragma once

#include <string>
#include <vector>

#include "common/hub_cache.h"

namespace align {

struct DatasetFiles {
  std::vector<std::string> files;  // in reading order
  std::string split;               // the split read; empty for a single file
};

// Throws InputError "<key>: <source>: ..." for a source that is neither an existing file or folder
// nor a cached dataset id (listing every path looked at and the download command, as model ids),
// a split that is not there (naming the splits that are), or a split without readable files.
DatasetFiles resolve_dataset_files(const std::string& source, const std::string& key,
                                   const EnvLookup& env = process_env());

// The splits of a folder (relative paths of its files, '/'-separated) and each split's files, as
// datasets' get_data_patterns + resolve_pattern find them; in datasets' split order (train,
// validation, test, then the others by name).
struct DatasetSplit {
  std::string name;
  std::vector<std::string> files;
};
std::vector<DatasetSplit> dataset_splits(const std::vector<std::string>& relative_files);

// fsspec's glob (Python's glob rules): '*' and '?' stay within a path part, [...] is a class
// ([!...] negated), "**" as a whole part is any number of parts. For dataset_splits and tests.
bool glob_match(const std::string& pattern, const std::string& path);

}  // namespace align
