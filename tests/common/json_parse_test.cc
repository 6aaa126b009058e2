// parse_json and the readers built on it: deep nesting and duplicate keys are clear errors naming
// the file (and line), never a crash or a silent choice.
#include "common/json_parse.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "common/config_reader.h"
#include "common/error.h"
#include "common/jsonl.h"
#include "tests/test_util.h"

namespace align {
namespace {

std::string nested(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(ParseJson, DepthIsLimitedWithThePlaceNamed) {
  EXPECT_NO_THROW(parse_json(nested(kMaxJsonDepth), "ok.json"));
  const std::string what = error_of([] { parse_json(nested(70000), "deep.json"); });
  EXPECT_NE(what.find("deep.json: JSON nested more than 512 levels deep at line 1, column 513"),
            std::string::npos)
      << what;
  // Brackets inside strings do not count.
  EXPECT_NO_THROW(parse_json("{\"a\": \"" + std::string(5000, '[') + "\"}", "s.json"));
}

TEST(ParseJson, ReadersRejectDeepValuesInsteadOfCrashing) {
  testing::TempDir dir;
  const std::string config = dir.file("deep.json");
  std::ofstream(config) << "{\"model\": " << nested(70000) << "}";
  const std::string what = error_of([&] { load_config_file(config); });
  EXPECT_NE(what.find(config + ": JSON nested more than 512 levels deep"), std::string::npos)
      << what;
  const std::string data = dir.file("deep.jsonl");
  std::ofstream(data) << "{\"ok\": 1}\n{\"messages\": " << nested(70000) << "}\n";
  const std::string line =
      error_of([&] { for_each_jsonl(data, [](const nlohmann::json&, const JsonlLocation&) {}); });
  EXPECT_NE(line.find(data + ":2: JSON nested more than 512"), std::string::npos) << line;
}

TEST(ParseJson, DuplicateKeysAreAnErrorWhereAsked) {
  const std::string text = R"({"optimizer": {"lr": 1e-5, "lr": 2e-5}})";
  EXPECT_EQ(parse_json(text, "x.json")["optimizer"]["lr"], 2e-5);  // JSON's own rule: last wins
  const std::string what = error_of([&] { parse_json(text, "x.json", {true}); });
  EXPECT_NE(what.find("x.json: key \"optimizer.lr\" appears twice in one object"),
            std::string::npos)
      << what;
  // The same key in different objects is fine.
  EXPECT_NO_THROW(parse_json(R"({"a": {"x": 1}, "b": {"x": 2}})", "x.json", {true}));
  testing::TempDir dir;
  const std::string config = dir.file("c.json");
  std::ofstream(config) << R"({"model": {"path": "a"}, "model": {"path": "b"}})";
  EXPECT_NE(error_of([&] { load_config_file(config); }).find("key \"model\" appears twice"),
            std::string::npos);
}

TEST(ParseJson, MessagesQuoteAtMostAnExcerpt) {
  const std::string big(50'000'000, 'x');
  const std::string what = error_of([&] { parse_json("\"" + big, "big.jsonl:7"); });
  EXPECT_LT(what.size(), 1000u) << what.substr(0, 2000);
  EXPECT_NE(what.find("big.jsonl:7: not valid JSON"), std::string::npos);
  EXPECT_EQ(excerpt("short"), "short");
  EXPECT_EQ(excerpt(std::string(300, 'a'), 10), "aaaaaaaaaa... (300 bytes)");
}

}  // namespace
}  // namespace align
