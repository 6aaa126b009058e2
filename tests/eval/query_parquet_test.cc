// Query sets from Parquet through the local hub cache (eval/query_set.h on data/dataset_records.h):
// the golden query datasets the `datasets` package saved (tests/golden_datasets.h) give the same
// queries (ids, prompt tokens, oracle fields) as their JSONL export; a query without "id" is named
// by its line in JSONL and by its row in Parquet.
#include <gtest/gtest.h>

#include "common/error.h"
#include "data/chat_template.h"
#include "eval/query_set.h"
#include "oracles/oracle.h"
#include "tests/golden_datasets.h"

namespace align {
namespace {

using testing::golden_export;

struct Queries {
  Tokenizer tok = Tokenizer::load(testing::golden_path("tokenizer/main"));
  LazyChatFormat chat{testing::golden_path("tokenizer/main"), &tok, ChatFormatKind::kAuto, "test"};
  std::unique_ptr<Oracle> oracle = make_oracle({{"type", "exact"}}, "test");

  std::vector<Query> read(const std::string& source, QuerySetOptions options = {}) const {
    return read_queries(source, tok, chat, *oracle, options);
  }
};

TEST(QueryParquet, HubIdGivesTheQueriesOfTheJsonlExport) {
  testing::HubCacheForTest cache;
  const Queries q;
  for (const std::string split : {"train", "test"}) {
    const std::vector<Query> want = q.read(golden_export("queries", split));
    const std::vector<Query> got = q.read("align-test/queries:" + split);
    ASSERT_EQ(got.size(), want.size()) << split;
    ASSERT_GT(got.size(), 4u);
    for (size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].id, want[i].id);
      EXPECT_EQ(got[i].prompt, want[i].prompt) << split << " query " << i;
      EXPECT_EQ(got[i].fields, want[i].fields) << split << " query " << i;
    }
    // The id column (int64) names the queries; every other column reaches the oracle.
    EXPECT_EQ(got[0].id, "1000");
    EXPECT_TRUE(got[0].fields.at("tags").is_array());
    EXPECT_TRUE(got[0].fields.at("difficulty").is_number());
  }
  // No id column: line-N (from 1) in JSONL, row-N (from 0) in Parquet; all else equal.
  const std::vector<Query> want = q.read(golden_export("queries-messages", "train"));
  const std::vector<Query> got = q.read("align-test/queries-messages");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(want[i].id, "line-" + std::to_string(i + 1));
    EXPECT_EQ(got[i].id, "row-" + std::to_string(i));
    EXPECT_EQ(got[i].prompt, want[i].prompt) << i;
    EXPECT_EQ(got[i].fields, want[i].fields) << i;
  }
  // The limit stops within the first shard or past it.
  QuerySetOptions options;
  options.limit = 12;
  EXPECT_EQ(q.read("align-test/queries", options).size(), 12u);
}

TEST(QueryParquet, MissingOracleFieldNamesTheRow) {
  testing::HubCacheForTest cache;
  const Queries q;
  const std::unique_ptr<Oracle> regex = make_oracle({{"type", "regex"}}, "test");
  try {
    read_queries("align-test/queries:test", q.tok, q.chat, *regex, {});
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("data/test-00000-of-00001.parquet: row 0: "), std::string::npos) << m;
    EXPECT_NE(m.find("pattern"), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace align
