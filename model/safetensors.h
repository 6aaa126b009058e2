// The safetensors file format (https://github.com/huggingface/safetensors), without Torch:
//   [u64 little-endian header length N][N bytes of JSON header][data buffer]
// The header maps tensor names to {dtype, shape, data_offsets: [begin, end)} relative to the start
// of the data buffer, plus an optional "__metadata__" string map. Readers here are strict: they
// reject headers past the end of the file or absurdly large, non-JSON headers, unknown dtypes,
// offsets outside the buffer, gaps or overlaps between tensors, and byte counts that do not match
// the shape.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/mapped_file.h"

namespace align {

enum class Dtype {
  BOOL,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  F64,
  I64,
  U64
};

size_t dtype_size(Dtype dtype);
const char* dtype_name(Dtype dtype);
// Throws InputError naming `context` for a name that is not a safetensors dtype.
Dtype parse_dtype(const std::string& name, const std::string& context);

int64_t num_elements(const std::vector<int64_t>& shape);
std::string shape_str(const std::vector<int64_t>& shape);  // "[7680, 5120]"

// One tensor inside a mapped file. `data` points into the mapping (not necessarily aligned).
struct TensorView {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  size_t nbytes = 0;
};

// A validated, memory-mapped .safetensors file.
class SafetensorsFile {
 public:
  // Maps and validates `path`; throws InputError naming the file and the problem.
  static std::shared_ptr<const SafetensorsFile> open(const std::string& path);

  const std::string& path() const { return file_->path(); }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::shared_ptr<MappedFile>& mapping() const { return file_; }

 private:
  std::shared_ptr<MappedFile> file_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> metadata_;
};

// A tensor to write: its bytes are produced by `write_bytes`, which must emit exactly
// num_elements(shape) * dtype_size(dtype) bytes through the sink it is given (in any chunks).
struct TensorSource {
  std::string name;
  Dtype dtype = Dtype::F32;
  std::vector<int64_t> shape;
  std::function<void(const std::function<void(const void*, size_t)>& sink)> write_bytes;
};

// Writes one .safetensors file atomically (temporary file, then rename), streaming each tensor's
// bytes so nothing larger than one tensor is held in memory. `metadata` goes into "__metadata__"
// (Hugging Face transformers requires {"format": "pt"}, which is added when absent).
void write_safetensors(const std::string& path, const std::vector<TensorSource>& tensors,
                       std::map<std::string, std::string> metadata = {});

}  // namespace align
