#include "common/atomic_file.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "tests/test_util.h"

namespace align {
namespace {

TEST(AtomicFile, FileAppearsOnlyOnCommit) {
  testing::TempDir dir;
  std::string path = dir.file("out.txt");
  {
    AtomicFile file(path);
    file.write("hello");
    EXPECT_FALSE(std::filesystem::exists(path));
    file.commit();
  }
  EXPECT_EQ(read_file(path), "hello");
}

TEST(AtomicFile, AbandonedWriteLeavesNothing) {
  testing::TempDir dir;
  std::string path = dir.file("out.txt");
  {
    AtomicFile file(path);
    file.write("partial");
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

TEST(AtomicFile, MissingDirectoryIsAnIoErrorNamingThePath) {
  try {
    AtomicFile file("/nonexistent-dir/out.txt");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/out.txt"), std::string::npos);
  }
}

}  // namespace
}  // namespace align
