// The GGUF container (common/gguf_file.h): what the writer writes the reader reads back, byte
// layouts built by hand are read as the spec says, and every kind of malformed file is refused
// with the file and the item named.
#include "common/gguf_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tests/test_util.h"

namespace align {
namespace {

using nlohmann::json;

// Little-endian bytes of a GGUF file, built by hand.
struct Bytes {
  std::string data;
  template <typename T>
  Bytes& put(T v) {
    data.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  Bytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    data += s;
    return *this;
  }
  Bytes& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
    data += "GGUF";
    return put<uint32_t>(version).put<uint64_t>(tensors).put<uint64_t>(kvs);
  }
  Bytes& kv_u32(const std::string& key, uint32_t v) {
    return str(key).put<uint32_t>(4).put<uint32_t>(v);
  }
  Bytes& tensor(const std::string& name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).put<uint32_t>(static_cast<uint32_t>(ne.size()));
    for (uint64_t n : ne)
      put<uint64_t>(n);
    return put<uint32_t>(type).put<uint64_t>(offset);
  }
  Bytes& pad(size_t alignment = 32) {
    data.resize((data.size() + alignment - 1) / alignment * alignment, '\0');
    return *this;
  }
};

std::string write_bytes(const testing::TempDir& dir, const std::string& bytes) {
  const std::string path = dir.file("x.gguf");
  testing::write_text(path, bytes);
  return path;
}

// The InputError message of opening `bytes` as a GGUF file ("" when it opens).
std::string open_error(const std::string& bytes) {
  testing::TempDir dir;
  try {
    GgufFile::open(write_bytes(dir, bytes));
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

GgufTensorSource floats(const std::string& name, std::vector<int64_t> ne, std::vector<float> v) {
  GgufTensorSource t{name, std::move(ne), GgmlType::kF32, nullptr};
  t.write_bytes = [v](const std::function<void(const void*, size_t)>& sink) {
    sink(v.data(), v.size() * sizeof(float));
  };
  return t;
}

TEST(GgufFile, WriterOutputReadsBackInOrder) {
  testing::TempDir dir;
  GgufWriter w;
  w.set("general.architecture", GgufValue::string("phi3"));
  w.set("a.u8", {GgufType::kU8, GgufType::kU8, 200});
  w.set("a.i8", {GgufType::kI8, GgufType::kI8, -100});
  w.set("a.u16", {GgufType::kU16, GgufType::kU16, 60000});
  w.set("a.i16", {GgufType::kI16, GgufType::kI16, -30000});
  w.set("a.u32", GgufValue::u32(4000000000u));
  w.set("a.i32", {GgufType::kI32, GgufType::kI32, -2000000000});
  w.set("a.u64", {GgufType::kU64, GgufType::kU64, uint64_t{1} << 63});
  w.set("a.i64", {GgufType::kI64, GgufType::kI64, -(int64_t{1} << 62)});
  w.set("a.f32", GgufValue::f32(0.1f));
  w.set("a.f64", {GgufType::kF64, GgufType::kF64, 0.1});
  w.set("a.bool", GgufValue::boolean(true));
  w.set("a.strings", GgufValue::array(GgufType::kString, {"Ġhello", "", "<|im_end|>", "東京"}));
  w.set("a.ints", GgufValue::array(GgufType::kI32, {1, -3, 5}));
  w.set("a.u32", GgufValue::u32(7));  // set again: keeps its place
  w.add_tensor(floats("t.matrix", {3, 2}, {0, 1, 2, 3, 4, 5}));
  w.add_tensor(floats("t.vector", {5}, {-1, -2, -3, -4, -5}));
  const std::string path = dir.file("out.gguf");
  w.write(path);

  const auto file = GgufFile::open(path);
  EXPECT_EQ(file->version(), 3u);
  EXPECT_EQ(file->alignment(), 32u);
  std::vector<std::string> keys;
  for (const auto& [key, value] : file->metadata())
    keys.push_back(key);
  EXPECT_EQ(keys, (std::vector<std::string>{"general.architecture", "a.u8", "a.i8", "a.u16",
                                            "a.i16", "a.u32", "a.i32", "a.u64", "a.i64", "a.f32",
                                            "a.f64", "a.bool", "a.strings", "a.ints"}));
  EXPECT_EQ(file->get_string("general.architecture"), "phi3");
  EXPECT_EQ(file->get_int("a.u8"), 200);
  EXPECT_EQ(file->get_int("a.i8"), -100);
  EXPECT_EQ(file->get_int("a.u16"), 60000);
  EXPECT_EQ(file->get_int("a.i16"), -30000);
  EXPECT_EQ(file->get_int("a.u32"), 7);
  EXPECT_EQ(file->get_int("a.i32"), -2000000000);
  EXPECT_EQ(file->find("a.u64")->value.get<uint64_t>(), uint64_t{1} << 63);
  EXPECT_EQ(file->get_int("a.i64"), -(int64_t{1} << 62));
  EXPECT_EQ(file->get_float("a.f32"), static_cast<double>(0.1f));
  EXPECT_EQ(file->get_float("a.f64"), 0.1);
  EXPECT_EQ(file->get_bool("a.bool"), true);
  EXPECT_EQ(*file->get_array("a.strings", GgufType::kString),
            json({"Ġhello", "", "<|im_end|>", "東京"}));
  EXPECT_EQ(*file->get_array("a.ints", GgufType::kI32), json({1, -3, 5}));
  EXPECT_EQ(file->get_int("absent"), std::nullopt);

  ASSERT_EQ(file->tensors().size(), 2u);
  const GgufTensor& m = file->tensors()[0];
  EXPECT_EQ(m.name, "t.matrix");
  EXPECT_EQ(m.ne, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(m.shape(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(m.nbytes, 24u);
  EXPECT_EQ(m.offset, 0u);
  float values[6];
  std::memcpy(values, m.data, sizeof values);
  EXPECT_EQ(values[5], 5.0f);
  const GgufTensor* v = file->find_tensor("t.vector");
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->offset, 32u);  // 24 bytes, padded to the alignment
  EXPECT_EQ((reinterpret_cast<uintptr_t>(v->data) - reinterpret_cast<uintptr_t>(m.data)) % 32, 0u);
}

TEST(GgufFile, ReadsAHandBuiltFileAsTheSpecLaysItOut) {
  // Alignment 64 from general.alignment; a Q8_0 tensor of two blocks (2 x 34 bytes).
  Bytes b;
  b.header(2, 2).kv_u32("general.alignment", 64).str("s").put<uint32_t>(8).str("text");
  b.tensor("q", {32, 2}, 8, 0).tensor("f", {2}, 0, 128);
  b.pad(64);
  std::string q(68, '\x01');
  b.data += q;
  b.pad(64);  // the f tensor starts 128 bytes into the data
  b.put<float>(1.5f).put<float>(-2.0f);
  testing::TempDir dir;
  const auto file = GgufFile::open(write_bytes(dir, b.data));
  EXPECT_EQ(file->alignment(), 64u);
  EXPECT_EQ(file->get_string("s"), "text");
  EXPECT_EQ(file->find_tensor("q")->nbytes, 68u);
  EXPECT_EQ(file->find_tensor("q")->type, GgmlType::kQ8_0);
  float f[2];
  std::memcpy(f, file->find_tensor("f")->data, sizeof f);
  EXPECT_EQ(f[0], 1.5f);
  EXPECT_EQ(f[1], -2.0f);
}

TEST(GgufFile, RefusesMalformedFilesNamingTheProblem) {
  auto valid = [] {
    Bytes b;
    b.header(1, 1).kv_u32("k", 1).tensor("t", {4}, 0, 0).pad();
    b.data += std::string(16, '\0');
    return b;
  };
  EXPECT_EQ(open_error(valid().data), "");
  struct Case {
    const char* what;
    std::string bytes;
    const char* message;
  };
  std::vector<Case> cases;
  {
    std::string bytes = valid().data;
    bytes[0] = 'X';
    cases.push_back({"magic", bytes, "not a GGUF file"});
  }
  {
    Bytes b;
    b.header(0, 0, 1);
    cases.push_back({"version 1", b.data, "GGUF version 1"});
  }
  {
    Bytes b;
    b.header(0, 0, 0x03000000);
    cases.push_back({"big-endian", b.data, "big-endian"});
  }
  {
    Bytes b;
    b.header(0, 1000000);
    cases.push_back({"counts", b.data, "more than the file can hold"});
  }
  {
    Bytes b;
    b.header(0, 2).kv_u32("k", 1).kv_u32("k", 2);
    cases.push_back({"duplicate key", b.data, "'k' appears twice"});
  }
  {
    Bytes b;
    b.header(0, 1).str("k").put<uint32_t>(13).put<uint32_t>(0);
    cases.push_back({"value type", b.data, "unknown value type 13"});
  }
  {
    Bytes b;
    b.header(0, 1).str("k").put<uint32_t>(7).put<uint8_t>(2);
    cases.push_back({"bool", b.data, "a bool must be 0 or 1"});
  }
  {
    Bytes b;
    b.header(0, 1).str("k").put<uint32_t>(8).put<uint64_t>(1000);
    cases.push_back({"string length", b.data, "past the end of the file"});
  }
  {
    Bytes b;
    b.header(0, 1).str("k").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1);
    cases.push_back({"nested array", b.data, "arrays of arrays"});
  }
  {
    Bytes b;
    b.header(0, 1).kv_u32("general.alignment", 24);
    cases.push_back({"alignment", b.data, "power of two"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("t", {4}, 99, 0).pad();
    cases.push_back({"ggml type", b.data, "unknown ggml type 99"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("t", {5, 2}, 8, 0).pad();
    b.data += std::string(1024, '\0');
    cases.push_back({"blocks", b.data, "not a multiple of 32"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("t", {4}, 0, 8).pad();
    b.data += std::string(64, '\0');
    cases.push_back({"offset alignment", b.data, "not a multiple of the alignment"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("t", {64}, 0, 0).pad();
    b.data += std::string(16, '\0');
    cases.push_back({"past the end", b.data, "runs past the end of the file"});
  }
  {
    Bytes b;
    b.header(2, 0).tensor("a", {16}, 0, 0).tensor("b", {4}, 0, 32).pad();
    b.data += std::string(64, '\0');
    cases.push_back({"overlap", b.data, "tensors 'a' and 'b' overlap"});
  }
  {
    Bytes b;
    b.header(2, 0).tensor("a", {4}, 0, 0).tensor("a", {4}, 0, 32).pad();
    b.data += std::string(64, '\0');
    cases.push_back({"duplicate tensor", b.data, "tensor 'a' appears twice"});
  }
  {
    Bytes b;
    b.header(1, 0).tensor("t", {1, 1, 1, 1, 1}, 0, 0);
    cases.push_back({"dimensions", b.data, "expected 1 to 4 dimensions"});
  }
  for (const Case& c : cases) {
    const std::string message = open_error(c.bytes);
    EXPECT_NE(message.find(c.message), std::string::npos)
        << c.what << ": expected \"" << c.message << "\", got \"" << message << "\"";
    EXPECT_NE(message.find("x.gguf"), std::string::npos) << c.what << ": " << message;
  }
  // Every truncation of a valid file is refused (never read past the end).
  const std::string whole = valid().data;
  for (size_t n = 0; n + 1 < whole.size(); ++n)
    EXPECT_NE(open_error(whole.substr(0, n)), "") << "truncated to " << n << " bytes";
}

TEST(GgufFile, TypedReadsNameTheKeyAndBothTypes) {
  testing::TempDir dir;
  GgufWriter w;
  w.set("name", GgufValue::string("x"));
  w.set("list", GgufValue::array(GgufType::kU32, {1}));
  w.write(dir.file("t.gguf"));
  const auto file = GgufFile::open(dir.file("t.gguf"));
  try {
    file->get_int("name");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("metadata 'name': expected an integer, found string"),
              std::string::npos)
        << e.what();
  }
  try {
    file->get_array("list", GgufType::kString);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("expected an array of string, found array of u32"),
              std::string::npos)
        << e.what();
  }
  try {
    file->require_int("missing.key");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'missing.key' is missing"), std::string::npos);
  }
}

TEST(GgufFile, AWriteThatFailsLeavesNothing) {
  testing::TempDir dir;
  const std::string path = dir.file("out.gguf");
  write_file_atomic(path, "old");
  GgufWriter w;
  w.add_tensor(floats("short", {4}, {1, 2, 3}));  // 12 bytes for 16
  EXPECT_THROW(w.write(path), Error);
  EXPECT_EQ(read_file(path), "old");
  size_t files = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path()))
    ++files;
  EXPECT_EQ(files, 1u);  // no temporary file left
  EXPECT_THROW(w.add_tensor(floats("short", {1}, {1})), InputError);
  EXPECT_THROW(w.add_tensor(floats(std::string(64, 'n'), {1}, {1})), InputError);
}

TEST(GgufFile, BlockSizesFollowGgml) {
  EXPECT_EQ(ggml_nbytes(GgmlType::kQ8_0, {64, 3}, "t"), 2u * 34 * 3);
  EXPECT_EQ(ggml_nbytes(GgmlType::kQ4_1, {32}, "t"), 20u);
  EXPECT_EQ(ggml_nbytes(GgmlType::kQ4_K, {256, 2}, "t"), 288u);
  EXPECT_EQ(ggml_nbytes(GgmlType::kBF16, {3, 5}, "t"), 30u);
  EXPECT_THROW(ggml_nbytes(GgmlType::kQ4_0, {48}, "t"), InputError);
  EXPECT_EQ(ggml_type_name(GgmlType::kQ4_1), "Q4_1");
  EXPECT_EQ(ggml_type_name(static_cast<GgmlType>(99)), "type 99");
}

}  // namespace
}  // namespace align
