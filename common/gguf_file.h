// The GGUF file format (ggml's docs/gguf.md, version 3; version 2 is read too), without Torch:
//
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 metadata_kv_count
//   metadata_kv_count x { string key | u32 value type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml type | u64 offset }
//   zero padding to general.alignment (default 32) | tensor data
//
// Strings are a u64 byte length and the bytes (no NUL). Arrays are a u32 element type, a u64
// count and the elements. ne[0] is the innermost dimension: a Hugging Face [out, in] matrix is
// stored with ne = {in, out} and the same bytes. Each offset counts from the start of the tensor
// data and is a multiple of the alignment. Little-endian only (a big-endian file is refused).
//
// The reader is strict, like the safetensors one: it maps the file and rejects a wrong magic or
// version, counts or strings past the end of the file, unknown value or ggml types, duplicate keys
// or tensor names, dimensions that are not whole blocks of their type, misaligned offsets, and
// tensors outside the file or overlapping each other; every error names the file and the item.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/mapped_file.h"

namespace align {

// Metadata value types (gguf_metadata_value_type).
enum class GgufType : uint32_t {
  kU8 = 0,
  kI8 = 1,
  kU16 = 2,
  kI16 = 3,
  kU32 = 4,
  kI32 = 5,
  kF32 = 6,
  kBool = 7,
  kString = 8,
  kArray = 9,
  kU64 = 10,
  kI64 = 11,
  kF64 = 12,
};
const char* gguf_type_name(GgufType type);  // "u32", "string", ... ("?" when unknown)

// Tensor types (ggml_type). Only the block layouts are known here; model/ggml_quant.h converts.
enum class GgmlType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kBF16 = 30,
};
struct GgmlTypeInfo {
  const char* name;        // "Q8_0"
  int64_t block_elements;  // values per block along ne[0]
  int64_t block_bytes;     // bytes per block
};
// The layout of a ggml type, or nullptr for a number no ggml release defines.
const GgmlTypeInfo* ggml_type_info(uint32_t type);
std::string ggml_type_name(GgmlType type);  // "Q8_0", or "type 99"
// Bytes of a tensor; throws InputError naming `what` when ne[0] is not a whole number of blocks.
uint64_t ggml_nbytes(GgmlType type, const std::vector<int64_t>& ne, const std::string& what);

// One metadata value. A scalar or string is `type` with `value` a JSON number, bool or string (the
// bytes as stored); an array is kArray with `element` its element type and `value` a JSON array
// (arrays of arrays are not supported).
struct GgufValue {
  GgufType type = GgufType::kU32;
  GgufType element = GgufType::kU32;
  nlohmann::json value;

  static GgufValue u32(uint32_t v) { return {GgufType::kU32, GgufType::kU32, v}; }
  static GgufValue f32(float v) { return {GgufType::kF32, GgufType::kF32, v}; }
  static GgufValue boolean(bool v) { return {GgufType::kBool, GgufType::kBool, v}; }
  static GgufValue string(std::string v) {
    return {GgufType::kString, GgufType::kString, std::move(v)};
  }
  static GgufValue array(GgufType element, nlohmann::json values) {
    return {GgufType::kArray, element, std::move(values)};
  }
};

// One tensor of a mapped file.
struct GgufTensor {
  std::string name;
  std::vector<int64_t> ne;  // ggml order: ne[0] innermost
  GgmlType type = GgmlType::kF32;
  uint64_t offset = 0;            // from the start of the tensor data
  const uint8_t* data = nullptr;  // into the mapping
  uint64_t nbytes = 0;
  // Row-major shape as Torch and Hugging Face write it (ne reversed): [out, in] for a matrix.
  std::vector<int64_t> shape() const { return {ne.rbegin(), ne.rend()}; }
};

// A validated, memory-mapped GGUF file.
class GgufFile {
 public:
  // Maps and validates `path`; throws InputError naming the file and the problem.
  static std::shared_ptr<const GgufFile> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  // In file order.
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const std::vector<GgufTensor>& tensors() const { return tensors_; }
  const GgufValue* find(const std::string& key) const;           // nullptr when absent
  const GgufTensor* find_tensor(const std::string& name) const;  // nullptr when absent

  // Typed reads; each throws InputError naming the file, the key, the expected and the found
  // type. An integer key accepts any integer type; a float key f32 or f64.
  std::optional<int64_t> get_int(const std::string& key) const;
  std::optional<double> get_float(const std::string& key) const;
  std::optional<std::string> get_string(const std::string& key) const;
  std::optional<bool> get_bool(const std::string& key) const;
  int64_t require_int(const std::string& key) const;  // also throws when absent
  // An array of `element` values (its JSON array); nullptr when absent.
  const nlohmann::json* get_array(const std::string& key, GgufType element) const;

 private:
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 3;
  uint32_t alignment_ = 32;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensor> tensors_;
};

// A tensor to write: `write_bytes` must emit exactly ggml_nbytes(type, ne) bytes through the sink
// it is given, in any chunks, so only one tensor (or less) is ever in memory.
struct GgufTensorSource {
  std::string name;
  std::vector<int64_t> ne;  // ggml order
  GgmlType type = GgmlType::kF32;
  std::function<void(const std::function<void(const void*, size_t)>& sink)> write_bytes;
};

// Collects metadata and tensors, then writes one file atomically (temporary file, then rename).
class GgufWriter {
 public:
  // Sets `key`; a key set twice keeps its first position and the last value.
  void set(const std::string& key, GgufValue value);
  void add_tensor(GgufTensorSource tensor);  // throws InputError for a repeated name
  // Writes version 3 with the default alignment of 32 (general.alignment is not written). Throws
  // Error when a tensor's producer writes another number of bytes than its type and shape need;
  // nothing is left at `path` then.
  void write(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<GgufTensorSource> tensors_;
};

}  // namespace align
