// common/hub_cache: hub ids, the cache root from the environment, and the lookup of a snapshot in a
// cache tree the test writes (refs/<name> holding a commit, snapshots/<commit>/).
#include "common/hub_cache.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "common/error.h"
#include "tests/test_util.h"

namespace align {
namespace {

namespace fs = std::filesystem;
const std::string kHash = "0123456789abcdef0123456789abcdef01234567";
const std::string kOther = "fedcba9876543210fedcba9876543210fedcba98";

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

// root/models--org--tiny with refs/main -> kHash, refs/v1 -> kOther and both snapshots.
void write_cache(const std::string& root) {
  const fs::path repo = fs::path(root) / "models--org--tiny";
  fs::create_directories(repo / "refs");
  fs::create_directories(repo / "snapshots" / kHash);
  fs::create_directories(repo / "snapshots" / kOther);
  testing::write_text((repo / "refs" / "main").string(), kHash);
  testing::write_text((repo / "refs" / "v1").string(), kOther + "\n");
}

TEST(HubCache, ParsesHubIds) {
  auto id = parse_hub_id("microsoft/phi-4");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo, "microsoft/phi-4");
  EXPECT_EQ(id->revision, "");
  id = parse_hub_id("org/tiny@v1.0");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->repo, "org/tiny");
  EXPECT_EQ(id->revision, "v1.0");
  id = parse_hub_id("org/tiny@refs/pr/1");
  ASSERT_TRUE(id);
  EXPECT_EQ(id->revision, "refs/pr/1");
  for (const char* not_id : {"tiny", "runs/tiny/model", "/abs/path", "./org/tiny", "../org/tiny",
                             "org/", "/tiny", "org/ti ny", "org--x/tiny", "org/ti..ny", "org/tiny-",
                             "org/tiny@", "org/tiny@../x", "org/tiny@/x", "~/models"})
    EXPECT_FALSE(parse_hub_id(not_id)) << not_id;
  EXPECT_FALSE(parse_hub_id("org/" + std::string(94, 'a')));
}

TEST(HubCache, CacheRootFollowsHuggingfaceHubConstants) {
  EXPECT_EQ(hub_cache_root(env_of({{"HF_HUB_CACHE", "/c"}, {"HF_HOME", "/h"}})).path, "/c");
  EXPECT_EQ(hub_cache_root(env_of({{"HUGGINGFACE_HUB_CACHE", "/l"}, {"HF_HOME", "/h"}})).path,
            "/l");
  EXPECT_EQ(hub_cache_root(env_of({{"HF_HOME", "/h"}, {"XDG_CACHE_HOME", "/x"}})).path, "/h/hub");
  EXPECT_EQ(hub_cache_root(env_of({{"XDG_CACHE_HOME", "/x"}, {"HOME", "/u"}})).path,
            "/x/huggingface/hub");
  const HubCacheRoot fallback = hub_cache_root(env_of({{"HOME", "/u"}}));
  EXPECT_EQ(fallback.path, "/u/.cache/huggingface/hub");
  // expanduser, then expandvars; an unknown variable stays as written.
  EXPECT_EQ(hub_cache_root(env_of({{"HF_HOME", "~/hf"}, {"HOME", "/u"}})).path, "/u/hf/hub");
  EXPECT_EQ(
      hub_cache_root(env_of({{"HF_HUB_CACHE", "$S/${T}/$NONE/c"}, {"S", "/s"}, {"T", "t"}})).path,
      "/s/t/$NONE/c");
  EXPECT_EQ(hub_cache_root(env_of({{"HF_HUB_CACHE", "/c"}})).source, "HF_HUB_CACHE");
}

TEST(HubCache, FindsMainBranchesAndCommits) {
  testing::TempDir dir;
  write_cache(dir.path());
  const std::string snapshots = dir.file("models--org--tiny/snapshots/");
  HubLookup found = find_in_hub_cache(*parse_hub_id("org/tiny"), dir.path());
  ASSERT_TRUE(found.dir);
  EXPECT_EQ(*found.dir, snapshots + kHash);
  found = find_in_hub_cache(*parse_hub_id("org/tiny@v1"), dir.path());  // newline stripped
  ASSERT_TRUE(found.dir);
  EXPECT_EQ(*found.dir, snapshots + kOther);
  found = find_in_hub_cache(*parse_hub_id("org/tiny@" + kOther), dir.path());
  ASSERT_TRUE(found.dir);
  EXPECT_EQ(*found.dir, snapshots + kOther);

  found = find_in_hub_cache(*parse_hub_id("org/tiny@v2"), dir.path());
  EXPECT_FALSE(found.dir);
  ASSERT_EQ(found.looked.size(), 1u);
  EXPECT_EQ(found.looked[0], dir.file("models--org--tiny/refs/v2") + " (no such file)");
  const std::string absent(40, 'a');
  found = find_in_hub_cache(*parse_hub_id("org/tiny@" + absent), dir.path());
  EXPECT_FALSE(found.dir);
  ASSERT_EQ(found.looked.size(), 1u);
  EXPECT_EQ(found.looked[0], snapshots + absent + " (no such directory)");
  found = find_in_hub_cache(*parse_hub_id("org/other"), dir.path());
  EXPECT_FALSE(found.dir);
  ASSERT_EQ(found.looked.size(), 1u);
  EXPECT_EQ(found.looked[0], dir.file("models--org--other") + " (no such directory)");
  // A ref naming a snapshot that is not there.
  testing::write_text(dir.file("models--org--tiny/refs/gone"), absent);
  found = find_in_hub_cache(*parse_hub_id("org/tiny@gone"), dir.path());
  EXPECT_FALSE(found.dir);
  ASSERT_EQ(found.looked.size(), 2u);
  EXPECT_EQ(found.looked[1], snapshots + absent + " (no such directory)");
}

TEST(HubCache, ResolvesModelDirectories) {
  testing::TempDir dir;
  write_cache(dir.file("hub"));
  const EnvLookup env = env_of({{"HF_HUB_CACHE", dir.file("hub")}});
  ModelLocation at = resolve_model_dir("org/tiny", "--model", env);
  EXPECT_EQ(at.dir, dir.file("hub/models--org--tiny/snapshots/") + kHash);
  ASSERT_TRUE(at.hub);
  EXPECT_EQ(at.name_or_path, "org/tiny");
  at = resolve_model_dir("org/tiny@v1", "--model", env);
  EXPECT_EQ(at.name_or_path, "org/tiny");
  EXPECT_EQ(at.hub->revision, "v1");

  // A local directory wins over a hub id; its name_or_path is absolute.
  at = resolve_model_dir(dir.file("hub"), "--model", env);
  EXPECT_EQ(at.dir, dir.file("hub"));
  EXPECT_FALSE(at.hub);
  const fs::path cwd = fs::current_path();
  fs::create_directories(dir.file("org/tiny"));
  fs::current_path(dir.path());
  at = resolve_model_dir("org/tiny", "--model", env);
  const std::string local = fs::absolute("org/tiny").string();
  fs::current_path(cwd);
  EXPECT_EQ(at.dir, "org/tiny");
  EXPECT_FALSE(at.hub);
  EXPECT_EQ(at.name_or_path, local);

  testing::write_text(dir.file("file"), "x");
  EXPECT_THROW(resolve_model_dir(dir.file("file"), "--model", env), InputError);
  EXPECT_THROW(resolve_model_dir("", "--model", env), InputError);
  try {
    resolve_model_dir("org/nope@v3", "model.path", env);
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.path: org/nope@v3: neither a local directory"), std::string::npos) << m;
    EXPECT_NE(m.find(fs::absolute("org/nope@v3").string() + " (no such directory)"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find(dir.file("hub") + " (the cache, from HF_HUB_CACHE)"), std::string::npos) << m;
    EXPECT_NE(m.find(dir.file("hub/models--org--nope") + " (no such directory)"), std::string::npos)
        << m;
    EXPECT_NE(m.find("hf download org/nope --revision v3"), std::string::npos) << m;
  }
  try {
    resolve_model_dir("no-slash", "--model", env);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "--model: no-slash: no such directory");
  }
}

}  // namespace
}  // namespace align
