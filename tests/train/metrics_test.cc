#include "train/metrics.h"

#include <gtest/gtest.h>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tests/test_util.h"

namespace align {
namespace {

nlohmann::json record(int64_t step) {
  return {{"step", step}, {"loss", 2.0 / step}, {"lr", 1e-6}};
}

std::string lines_for(std::initializer_list<int64_t> steps) {
  std::string text;
  for (int64_t s : steps)
    text += record(s).dump() + "\n";
  return text;
}

TEST(Metrics, EachLineIsOnDiskAsSoonAsItIsWritten) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  MetricsWriter writer(path);
  writer.write(record(1));
  EXPECT_EQ(read_file(path), lines_for({1}));  // readable while the writer is still open
  writer.write(record(2));
  EXPECT_EQ(read_file(path), lines_for({1, 2}));
  EXPECT_THROW(writer.write({{"loss", 1.0}}), Error);  // no step
}

TEST(Metrics, ResumeTruncatesToTheCheckpointStepAndAppends) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  {
    MetricsWriter first_run(path);
    for (int64_t s = 1; s <= 7; ++s)
      first_run.write(record(s));
  }
  // Killed mid-write: a torn last line.
  testing::write_text(path, read_file(path) + "{\"step\": 8, \"lo");

  MetricsWriter resumed(path);  // resumed from the checkpoint at step 5
  resumed.truncate_after(5);
  EXPECT_EQ(read_file(path), lines_for({1, 2, 3, 4, 5}));
  for (int64_t s = 6; s <= 8; ++s)
    resumed.write(record(s));
  // What an uninterrupted run would have written.
  EXPECT_EQ(read_file(path), lines_for({1, 2, 3, 4, 5, 6, 7, 8}));

  resumed.truncate_after(-1);  // a fresh run into an old output folder
  EXPECT_EQ(read_file(path), "");
  resumed.write(record(1));
  EXPECT_EQ(read_file(path), lines_for({1}));
}

TEST(Metrics, MalformedLineInTheMiddleIsAnInputErrorWithItsLine) {
  testing::TempDir dir;
  const std::string path = dir.file("metrics.jsonl");
  testing::write_text(path, lines_for({1}) + "not json\n" + lines_for({3}));
  MetricsWriter writer(path);
  try {
    writer.truncate_after(2);
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":2"), std::string::npos) << e.what();
  }
  // The file is untouched and the writer still appends.
  writer.write(record(4));
  EXPECT_EQ(read_file(path), lines_for({1}) + "not json\n" + lines_for({3, 4}));
}

}  // namespace
}  // namespace align
