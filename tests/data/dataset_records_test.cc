// Datasets from Parquet and the local hub cache (data/dataset_files.h, data/dataset_records.h,
// data/parquet_rows.h): the golden datasets the `datasets` package saved (tests/golden_datasets.h)
// read through a hub cache the test writes give the same records, and the same tokenized SFT
// examples and DPO pairs, as their JSONL export; a missing id lists where it was looked for; a
// wrong column type is named by file, row and column; the split rules follow datasets'.
#include "data/dataset_records.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "data/chat_template.h"
#include "data/dataset_files.h"
#include "data/preference_dataset.h"
#include "data/sft_dataset.h"
#include "tests/golden_datasets.h"

namespace align {
namespace {

using testing::golden_export;
using testing::golden_path;
using testing::HubCacheForTest;

const Tokenizer& tokenizer() {
  static const Tokenizer tok = Tokenizer::load(golden_path("tokenizer/main"));
  return tok;
}

// The tokenizer folder's own chat template (Phi-4's).
const LazyChatFormat& chat() {
  static const LazyChatFormat format(golden_path("tokenizer/main"), &tokenizer(),
                                     ChatFormatKind::kAuto, "test");
  return format;
}

std::vector<nlohmann::json> records(const std::string& source,
                                    std::vector<RecordLocation>* where = nullptr) {
  std::vector<nlohmann::json> out;
  for_each_record(source, "data.train", [&](const nlohmann::json& r, const RecordLocation& at) {
    out.push_back(r);
    if (where) where->push_back(at);
  });
  return out;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

const std::vector<std::pair<std::string, std::string>> kSplits = {
    {"sft-messages", "train"},
    {"sft-messages", "test"},
    {"sft-prompt-completion", "train"},
    {"sft-text", "train"},
    {"dpo-conversational", "train"},
    {"dpo-conversational", "test"},
    {"dpo-implicit", "train"},
    {"queries", "train"},
    {"queries", "test"},
    {"queries-messages", "train"}};

TEST(DatasetRecords, HubIdGivesTheRecordsDatasetsReads) {
  HubCacheForTest cache;
  for (const auto& [name, split] : kSplits) {
    const std::vector<nlohmann::json> want = records(golden_export(name, split));
    std::vector<RecordLocation> at;
    const std::vector<nlohmann::json> got = records("align-test/" + name + ":" + split, &at);
    ASSERT_GT(want.size(), 4u) << name;
    ASSERT_EQ(got.size(), want.size()) << name << ":" << split;
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i], want[i]) << name << ":" << split << " record " << i;
      EXPECT_EQ(at[i].index, static_cast<int64_t>(i));
      EXPECT_EQ(at[i].line, 0);
    }
  }
  // Without :SPLIT, the train split; the row counts start again in each shard.
  std::vector<RecordLocation> at;
  EXPECT_EQ(records("align-test/sft-messages", &at),
            records(golden_export("sft-messages", "train")));
  ASSERT_EQ(at.size(), 37u);
  EXPECT_NE(at[0].file.find("data/train-00000-of-00002.parquet"), std::string::npos) << at[0].file;
  EXPECT_NE(at[36].file.find("data/train-00001-of-00002.parquet"), std::string::npos);
  EXPECT_EQ(at[18].row, 18);
  EXPECT_EQ(at[19].row, 0);  // the second shard's first row
  EXPECT_EQ(at[19].str(), at[19].file + ": row 0");
}

TEST(DatasetRecords, SftExamplesEqualThoseOfTheJsonlExport) {
  HubCacheForTest cache;
  for (const auto& [name, split] : kSplits) {
    if (name.rfind("sft-", 0) != 0) continue;
    const SftDataset want = load_sft_dataset(golden_export(name, split), chat(), {});
    const SftDataset got = load_sft_dataset("align-test/" + name + ":" + split, chat(), {});
    ASSERT_EQ(got.examples.size(), want.examples.size()) << name;
    for (size_t i = 0; i < got.examples.size(); ++i) {
      EXPECT_EQ(got.examples[i].ids, want.examples[i].ids) << name << " example " << i;
      EXPECT_EQ(got.examples[i].loss_mask, want.examples[i].loss_mask) << name << " " << i;
    }
    EXPECT_EQ(got.target_tokens, want.target_tokens);
    EXPECT_GT(got.target_tokens, 0);
  }
}

TEST(DatasetRecords, PreferencePairsEqualThoseOfTheJsonlExport) {
  HubCacheForTest cache;
  for (const auto& [name, split] : kSplits) {
    if (name.rfind("dpo-", 0) != 0) continue;
    const PreferenceDataset want = load_preference_dataset(golden_export(name, split), chat(), {});
    const PreferenceDataset got =
        load_preference_dataset("align-test/" + name + ":" + split, chat(), {});
    ASSERT_EQ(got.pairs.size(), want.pairs.size()) << name;
    for (size_t i = 0; i < got.pairs.size(); ++i) {
      EXPECT_EQ(got.pairs[i].prompt, want.pairs[i].prompt) << name << " pair " << i;
      EXPECT_EQ(got.pairs[i].chosen, want.pairs[i].chosen) << name << " pair " << i;
      EXPECT_EQ(got.pairs[i].rejected, want.pairs[i].rejected) << name << " pair " << i;
    }
  }
}

TEST(DatasetRecords, ReadsRevisionsFoldersAndFiles) {
  HubCacheForTest cache;
  const std::vector<nlohmann::json> want = records(golden_export("sft-text", "train"));
  EXPECT_EQ(records("align-test/sft-text@main"), want);
  EXPECT_EQ(records("align-test/sft-text@" + testing::kGoldenCommit + ":train"), want);
  const std::string folder = golden_path("datasets/sft-text");
  EXPECT_EQ(records(folder), want);
  EXPECT_EQ(records(folder + ":train"), want);
  EXPECT_EQ(records(folder + "/data/train-00000-of-00001.parquet"), want);
  EXPECT_EQ(records(golden_path("datasets/sft-messages") + ":test"),
            records(golden_export("sft-messages", "test")));
}

TEST(DatasetRecords, MissingDatasetIdSaysWhereItLooked) {
  HubCacheForTest cache;
  std::string m = error_of([] { records("align-test/nope"); });
  EXPECT_NE(m.find("data.train: align-test/nope: neither a local file or folder nor a Hugging "
                   "Face dataset id in the local cache"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(cache.root() + " (the cache, from HF_HUB_CACHE)"), std::string::npos) << m;
  EXPECT_NE(m.find(cache.root() + "/datasets--align-test--nope (no such directory)"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find("hf download align-test/nope --repo-type dataset"), std::string::npos) << m;
  // A revision that is not there: its ref file.
  m = error_of([] { records("align-test/sft-text@v9:train"); });
  EXPECT_NE(m.find("datasets--align-test--sft-text/refs/v9 (no such file)"), std::string::npos)
      << m;
  EXPECT_NE(m.find("--repo-type dataset --revision v9"), std::string::npos) << m;
  // A split that is not there: the splits that are.
  m = error_of([] { records("align-test/sft-text:validation"); });
  EXPECT_NE(m.find("no split \"validation\" (splits: train;"), std::string::npos) << m;
  // Not an id either (three parts): a missing file, IoError as for any file that cannot be read.
  EXPECT_THROW(records("no/such/file.jsonl"), IoError);
}

TEST(DatasetRecords, WrongColumnTypeNamesFileRowAndColumn) {
  const std::string int64 = golden_path("datasets/bad/messages_int64.parquet");
  EXPECT_EQ(error_of([&] { load_sft_dataset(int64, chat(), {}); }),
            int64 +
                ": row 0, column messages: expected an array of {\"role\", \"content\"} "
                "objects, got number 5 (column type int64)");
  // Row 17 sits in the third row group of 8 rows.
  const std::string null_content = golden_path("datasets/bad/null_content.parquet");
  const std::string want = null_content +
                           ": row 17, column messages[1].content: expected a string, got null "
                           "(column type list<element: struct<role: string, content: string>>)";
  EXPECT_EQ(error_of([&] { load_sft_dataset(null_content, chat(), {}); }), want);
  SftDataOptions skip;
  skip.skip_bad_lines = true;
  const SftDataset kept = load_sft_dataset(null_content, chat(), skip);
  EXPECT_EQ(kept.examples.size(), 23u);
  EXPECT_EQ(kept.skipped, 1);
  EXPECT_EQ(kept.skip_messages, std::vector<std::string>{want});
  // A file that is not Parquet.
  testing::TempDir dir;
  testing::write_text(dir.file("x.parquet"), "{\"text\": \"not parquet\"}\n");
  EXPECT_NE(error_of([&] {
              records(dir.file("x.parquet"));
            }).find(dir.file("x.parquet") + ": not a Parquet file"),
            std::string::npos);
}

TEST(DatasetRecords, StreamsRowGroupsAndStopsAtTheLimit) {
  ParquetRows rows(golden_path("datasets/bad/null_content.parquet"));
  EXPECT_EQ(rows.num_rows(), 24);
  ASSERT_EQ(rows.columns().size(), 1u);
  EXPECT_EQ(rows.columns()[0].name, "messages");
  nlohmann::json row;
  int64_t n = 0;
  while (rows.next(&row)) {
    EXPECT_EQ(rows.next_row(), ++n);
    EXPECT_TRUE(row.at("messages").is_array());
  }
  EXPECT_EQ(n, 24);
  EXPECT_FALSE(rows.next(&row));

  HubCacheForTest cache;
  for (int64_t limit : {1, 5, 19, 21}) {  // the first shard holds 19 rows
    RecordReadOptions options;
    options.limit = limit;
    int64_t seen = 0;
    for_each_record(
        "align-test/sft-messages", "data.train",
        [&](const nlohmann::json&, const RecordLocation& at) { EXPECT_EQ(at.index, seen++); },
        options);
    EXPECT_EQ(seen, limit);
  }
}

TEST(DatasetFiles, SplitsFollowDatasetsPatterns) {
  auto splits = [](const std::vector<std::string>& files) {
    std::vector<std::pair<std::string, std::vector<std::string>>> out;
    for (const DatasetSplit& s : dataset_splits(files))
      out.emplace_back(s.name, s.files);
    return out;
  };
  using Splits = std::vector<std::pair<std::string, std::vector<std::string>>>;
  // push_to_hub's shards: the split is the name before the shard number; train, validation,
  // test first, then the others by name.
  EXPECT_EQ(
      splits({"data/zz-00000-of-00001.parquet", "data/test-00000-of-00001.parquet",
              "data/train-00001-of-00002.parquet", "data/train-00000-of-00002.parquet",
              "data/my_split-00000-of-00001.parquet", "other/train.parquet"}),
      (Splits{{"train", {"data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"}},
              {"test", {"data/test-00000-of-00001.parquet"}},
              {"my_split", {"data/my_split-00000-of-00001.parquet"}},
              {"zz", {"data/zz-00000-of-00001.parquet"}}}));
  // datasets refuses split names outside \w+(\.\w+)*.
  EXPECT_THROW(dataset_splits({"data/my-split-00000-of-00001.parquet"}), InputError);
  // Split keywords in folder names win over those in file names.
  EXPECT_EQ(
      splits({"default/train/0000.parquet", "default/partial-test/0000.parquet", "valid.parquet"}),
      (Splits{{"train", {"default/train/0000.parquet"}},
              {"test", {"default/partial-test/0000.parquet"}}}));
  EXPECT_EQ(splits({"train.parquet", "my_dev.jsonl", "eval-1.parquet", "trainer.parquet"}),
            (Splits{{"train", {"train.parquet"}},
                    {"validation", {"my_dev.jsonl"}},
                    {"test", {"eval-1.parquet"}}}));
  // No keyword anywhere: every file is train, sorted as fsspec's glob returns them.
  EXPECT_EQ(splits({"b.parquet", "a/c.parquet"}),
            (Splits{{"train", {"a/c.parquet", "b.parquet"}}}));
  EXPECT_TRUE(glob_match("**/train[-._ 0-9]*", "train-00000.parquet"));
  EXPECT_TRUE(glob_match("**/*[-._ 0-9]train/**", "a/b/x_train/c/d.parquet"));
  EXPECT_FALSE(glob_match("**/*[-._ 0-9]train/**", "a/xtrain/d.parquet"));
  EXPECT_FALSE(glob_match("*.parquet", "a/b.parquet"));
  EXPECT_TRUE(glob_match("[!a]?.p*", "b1.parquet"));
}

}  // namespace
}  // namespace align
