#include "common/jsonl.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "tests/test_util.h"

namespace align {
namespace {

TEST(Jsonl, ReadsRecordsWithLineNumbersAndSkipsBlankLines) {
  testing::TempDir dir;
  testing::write_text(dir.file("in.jsonl"), "{\"a\": 1}\n\n{\"a\": 2}\n");
  std::vector<std::pair<int, size_t>> seen;
  for_each_jsonl(dir.file("in.jsonl"), [&](const nlohmann::json& j, const JsonlLocation& at) {
    seen.emplace_back(j.at("a").get<int>(), at.line);
  });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], std::make_pair(1, size_t{1}));
  EXPECT_EQ(seen[1], std::make_pair(2, size_t{3}));
}

TEST(Jsonl, MalformedLineNamesFileAndLine) {
  testing::TempDir dir;
  std::string path = dir.file("bad.jsonl");
  testing::write_text(path, "{\"a\": 1}\n{\"a\": \n");
  try {
    for_each_jsonl(path, [](const nlohmann::json&, const JsonlLocation&) {});
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2"), std::string::npos) << e.what();
  }
}

TEST(Jsonl, ErrorsFromTheCallbackGainTheLocation) {
  testing::TempDir dir;
  std::string path = dir.file("in.jsonl");
  testing::write_text(path, "{}\n");
  try {
    for_each_jsonl(path, [](const nlohmann::json& j, const JsonlLocation&) { j.at("text"); });
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":1"), std::string::npos) << e.what();
  }
}

TEST(JsonlWriter, WritesOneObjectPerLineAtomically) {
  testing::TempDir dir;
  std::string path = dir.file("out.jsonl");
  {
    JsonlWriter writer(path);
    writer.write({{"x", 1}});
    writer.write({{"x", nullptr}});
    writer.commit();
  }
  EXPECT_EQ(read_file(path), "{\"x\":1}\n{\"x\":null}\n");
}

}  // namespace
}  // namespace align
