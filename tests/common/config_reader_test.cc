#include "common/config_reader.h"

#include <gtest/gtest.h>

#include "tests/test_util.h"

namespace align {
namespace {

void expect_error(const std::function<void()>& fn, const std::string& fragment) {
  try {
    fn();
    FAIL() << "expected InputError containing " << fragment;
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

TEST(ConfigReader, ReadsSectionsKeepsDefaultsAndRejectsUnknownKeysByPath) {
  nlohmann::json j = {{"optimizer", {{"lr", 1e-5}, {"lrr", 3}}}, {"model", {{"path", "m"}}}};
  ConfigReader root(j, "run.json");
  ConfigReader opt = root.section("optimizer");
  double lr = 0, wd = 0.25;
  opt.get("lr", lr);
  opt.get("weight_decay", wd);
  EXPECT_EQ(lr, 1e-5);
  EXPECT_EQ(wd, 0.25);
  expect_error([&] { opt.finish(); },
               "run.json: unknown config key optimizer.lrr (did you mean optimizer.lr?)");
  expect_error([&] { root.finish(); }, "model");
  std::string path;
  root.section("model").require("path", path);
  EXPECT_EQ(path, "m");
  EXPECT_NO_THROW(root.finish());
}

// An unknown key is matched against every key the config asked for, by its whole path or by its
// last part (the right key in the wrong section); nothing is suggested when nothing is close.
TEST(ConfigReader, UnknownKeysGetTheClosestKnownOne) {
  nlohmann::json j = {{"training", {{"beta", 0.1}, {"zzzz", 1}}},
                      {"dpo", nlohmann::json::object()}};
  ConfigReader root(j, "c.json");
  double beta = 0;
  root.section("dpo").get("beta", beta);
  ConfigReader training = root.section("training");
  int64_t log_every = 1;
  training.get("log_every", log_every);
  try {
    training.finish();
    FAIL() << "expected an unknown key";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("training.beta (did you mean dpo.beta?)"), std::string::npos) << what;
    EXPECT_NE(what.find("training.zzzz"), std::string::npos) << what;
    EXPECT_EQ(what.find("training.zzzz ("), std::string::npos) << what;
  }
}

TEST(ConfigReader, TypeErrorsAndMissingKeysNameThePath) {
  nlohmann::json j = {{"data", {{"max_seq_len", "long"}}}};
  ConfigReader data = ConfigReader(j, "c.json").section("data");
  int64_t n = 0;
  expect_error([&] { data.get("max_seq_len", n); },
               "c.json: data.max_seq_len: expected an integer, found \"long\"");
  std::string train;
  expect_error([&] { data.require("train", train); }, "missing required key data.train");
  nlohmann::json bad = {{"data", 3}};
  expect_error([&] { ConfigReader(bad, "c.json").section("data"); }, "data must be an object");
}

TEST(ConfigOverride, SetsNestedValuesParsingJsonOrString) {
  nlohmann::json j = {{"optimizer", {{"lr", 1e-5}}}};
  apply_override(j, "optimizer.lr=5e-6");
  apply_override(j, "output.dir=runs/x");
  apply_override(j, "lora.target_modules=[\"qkv_proj\"]");
  apply_override(j, "lora.enabled=true");
  EXPECT_EQ(j["optimizer"]["lr"].get<double>(), 5e-6);
  EXPECT_EQ(j["output"]["dir"], "runs/x");
  EXPECT_EQ(j["lora"]["target_modules"][0], "qkv_proj");
  EXPECT_EQ(j["lora"]["enabled"], true);
  expect_error([&] { apply_override(j, "optimizer.lr"); }, "expected section.key=value");
  expect_error([&] { apply_override(j, "optimizer.lr.x=1"); }, "is not a section");
}

TEST(ConfigFile, MalformedFileIsNamed) {
  testing::TempDir dir;
  testing::write_text(dir.file("c.json"), "{\"model\": ");
  expect_error([&] { load_config_file(dir.file("c.json")); }, dir.file("c.json"));
  testing::write_text(dir.file("d.json"), "[1]");
  expect_error([&] { load_config_file(dir.file("d.json")); }, "JSON object of sections");
}

}  // namespace
}  // namespace align
