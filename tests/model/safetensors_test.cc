// The safetensors reader and writer: round trips, and every kind of malformed file a reader must
// reject (docs/safetensors.md) giving an InputError that names the file and the problem.
#include "model/safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tests/test_util.h"

namespace align {
namespace {

// Writes [u64 header length][header][data] exactly as given, valid or not.
void write_raw(const std::string& path, const std::string& header, const std::string& data,
               uint64_t header_len) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<char>(header_len >> (8 * i));
  testing::write_text(path, bytes + header + data);
}

void write_raw(const std::string& path, const std::string& header, const std::string& data) {
  write_raw(path, header, data, header.size());
}

TensorSource bytes_source(std::string name, Dtype dtype, std::vector<int64_t> shape,
                          std::string bytes) {
  return {std::move(name), dtype, std::move(shape),
          [bytes](const auto& sink) { sink(bytes.data(), bytes.size()); }};
}

std::string float_bytes(std::vector<float> values) {
  return std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
}

// A small valid file with several dtypes, a scalar and an empty tensor.
std::string write_valid(const testing::TempDir& dir) {
  std::string path = dir.file("valid.safetensors");
  write_safetensors(
      path,
      {bytes_source("a", Dtype::F32, {2, 3}, float_bytes({1, 2, 3, 4, 5, 6})),
       bytes_source("b", Dtype::BF16, {4}, std::string("\x80\x3f\x00\x40\x40\x40\x80\x40", 8)),
       bytes_source("scalar", Dtype::I64, {}, std::string(8, '\x07')),
       bytes_source("empty", Dtype::U8, {0, 5}, "")},
      {{"note", "hello"}});
  return path;
}

void expect_input_error(const std::string& path, const std::string& fragment) {
  try {
    SafetensorsFile::open(path);
    FAIL() << "expected InputError containing '" << fragment << "'";
  } catch (const InputError& e) {
    std::string message = e.what();
    EXPECT_NE(message.find(path), std::string::npos) << message;
    EXPECT_NE(message.find(fragment), std::string::npos) << message;
  }
}

TEST(Safetensors, RoundTripKeepsDtypesShapesBytesAndMetadata) {
  testing::TempDir dir;
  auto file = SafetensorsFile::open(write_valid(dir));
  ASSERT_EQ(file->tensors().size(), 4u);
  const TensorView& a = file->tensors().at("a");
  EXPECT_EQ(a.dtype, Dtype::F32);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  float values[6];
  std::memcpy(values, a.data, sizeof(values));
  EXPECT_EQ(values[5], 6.0f);
  EXPECT_EQ(file->tensors().at("b").nbytes, 8u);
  EXPECT_TRUE(file->tensors().at("scalar").shape.empty());
  EXPECT_EQ(file->tensors().at("scalar").nbytes, 8u);
  EXPECT_EQ(file->tensors().at("empty").nbytes, 0u);
  EXPECT_EQ(file->metadata().at("format"), "pt");
  EXPECT_EQ(file->metadata().at("note"), "hello");
}

TEST(Safetensors, HeaderIsPaddedSoTheDataBufferIsAligned) {
  testing::TempDir dir;
  std::string bytes = read_file(write_valid(dir));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
}

TEST(Safetensors, EveryTruncationIsRejected) {
  testing::TempDir dir;
  std::string full = read_file(write_valid(dir));
  std::string path = dir.file("cut.safetensors");
  for (size_t len = 0; len < full.size(); ++len) {
    testing::write_text(path, full.substr(0, len));
    EXPECT_THROW(SafetensorsFile::open(path), InputError) << "length " << len;
  }
}

TEST(Safetensors, AbsurdHeaderLength) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, "{}", "", uint64_t{1} << 62);
  expect_input_error(path, "100 MB");
}

TEST(Safetensors, HeaderLengthPastTheEnd) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, "{}", "", 1000);
  expect_input_error(path, "past the end");
}

TEST(Safetensors, NonJsonHeader) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, "{not json", "");
  expect_input_error(path, "not valid JSON");
  write_raw(path, "[1, 2]", "");
  expect_input_error(path, "JSON object");
}

TEST(Safetensors, DuplicateTensorName) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path,
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
            std::string(8, '\0'));
  expect_input_error(path, "key \"a\" appears twice");
}

TEST(Safetensors, OverlappingOffsets) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path,
            R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
            R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
            std::string(12, '\0'));
  expect_input_error(path, "overlaps");
}

TEST(Safetensors, GapBetweenTensors) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path,
            R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})",
            std::string(12, '\0'));
  expect_input_error(path, "gap");
}

TEST(Safetensors, TrailingBytesAfterTheLastTensor) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
            std::string(6, '\0'));
  expect_input_error(path, "trailing");
}

TEST(Safetensors, OffsetsOutsideTheBuffer) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})",
            std::string(8, '\0'));
  expect_input_error(path, "truncated");
}

TEST(Safetensors, UnknownDtype) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})",
            std::string(4, '\0'));
  expect_input_error(path, "unknown dtype 'F33'");
}

TEST(Safetensors, ByteCountMustMatchShape) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"a":{"dtype":"BF16","shape":[3],"data_offsets":[0,4]}})",
            std::string(4, '\0'));
  expect_input_error(path, "needs 6 bytes");
}

TEST(Safetensors, MalformedEntries) {
  testing::TempDir dir;
  std::string path = dir.file("x.safetensors");
  write_raw(path, R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", "");
  expect_input_error(path, "non-negative integer");
  write_raw(path, R"({"a":{"dtype":"F32","data_offsets":[0,0]}})", "");
  expect_input_error(path, "missing field 'shape'");
  write_raw(path, R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}})", "");
  expect_input_error(path, "[begin, end]");
  write_raw(path, R"({"__metadata__":{"k":1}})", "");
  expect_input_error(path, "__metadata__ 'k' must be a string");
}

// Random corruption of a valid file: every outcome is a clean open or an InputError, never a
// crash or another exception.
TEST(Safetensors, RandomCorruptionNeverCrashes) {
  testing::TempDir dir;
  const std::string full = read_file(write_valid(dir));
  const std::string path = dir.file("fuzz.safetensors");
  std::mt19937 rng(1234);
  int rejected = 0;
  const int kRounds = 3000;
  for (int round = 0; round < kRounds; ++round) {
    std::string bytes = full;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      size_t at = rng() % bytes.size();
      bytes[at] = static_cast<char>(rng() % 256);
    }
    testing::write_text(path, bytes);
    try {
      auto file = SafetensorsFile::open(path);
      for (const auto& [name, view] : file->tensors()) {
        EXPECT_LE(view.data + view.nbytes, file->mapping()->data() + file->mapping()->size());
      }
    } catch (const InputError&) {
      ++rejected;
    }
  }
  EXPECT_GT(rejected, kRounds / 2);  // most corruptions are detectable
}

TEST(Safetensors, WriterRejectsWrongByteCounts) {
  testing::TempDir dir;
  std::string path = dir.file("w.safetensors");
  EXPECT_THROW(write_safetensors(path, {bytes_source("a", Dtype::F32, {2}, std::string(4, 'x'))}),
               Error);
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace align
