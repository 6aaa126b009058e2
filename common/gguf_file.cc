#include "common/gguf_file.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"

namespace align {
namespace {

using nlohmann::json;

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kDefaultAlignment = 32;
constexpr size_t kMaxDims = 4;        // GGML_MAX_DIMS
constexpr size_t kMaxNameBytes = 63;  // GGML_MAX_NAME is 64 with the NUL

// ggml's type table (ggml.c type_traits; gguf-py's GGML_QUANT_SIZES), by type number.
const std::map<uint32_t, GgmlTypeInfo>& type_table() {
  static const std::map<uint32_t, GgmlTypeInfo> table = {
      {0, {"F32", 1, 4}},         {1, {"F16", 1, 2}},         {2, {"Q4_0", 32, 18}},
      {3, {"Q4_1", 32, 20}},      {6, {"Q5_0", 32, 22}},      {7, {"Q5_1", 32, 24}},
      {8, {"Q8_0", 32, 34}},      {9, {"Q8_1", 32, 40}},      {10, {"Q2_K", 256, 84}},
      {11, {"Q3_K", 256, 110}},   {12, {"Q4_K", 256, 144}},   {13, {"Q5_K", 256, 176}},
      {14, {"Q6_K", 256, 210}},   {15, {"Q8_K", 256, 292}},   {16, {"IQ2_XXS", 256, 66}},
      {17, {"IQ2_XS", 256, 74}},  {18, {"IQ3_XXS", 256, 98}}, {19, {"IQ1_S", 256, 50}},
      {20, {"IQ4_NL", 32, 18}},   {21, {"IQ3_S", 256, 110}},  {22, {"IQ2_S", 256, 82}},
      {23, {"IQ4_XS", 256, 136}}, {24, {"I8", 1, 1}},         {25, {"I16", 1, 2}},
      {26, {"I32", 1, 4}},        {27, {"I64", 1, 8}},        {28, {"F64", 1, 8}},
      {29, {"IQ1_M", 256, 56}},   {30, {"BF16", 1, 2}},       {34, {"TQ1_0", 256, 54}},
      {35, {"TQ2_0", 256, 66}},   {39, {"MXFP4", 32, 17}},
  };
  return table;
}

// Bytes of one scalar of a fixed-size value type; 0 for string and array.
size_t scalar_size(GgufType type) {
  switch (type) {
    case GgufType::kU8:
    case GgufType::kI8:
    case GgufType::kBool:
      return 1;
    case GgufType::kU16:
    case GgufType::kI16:
      return 2;
    case GgufType::kU32:
    case GgufType::kI32:
    case GgufType::kF32:
      return 4;
    case GgufType::kU64:
    case GgufType::kI64:
    case GgufType::kF64:
      return 8;
    default:
      return 0;
  }
}

bool known_type(uint32_t type) {
  return type <= static_cast<uint32_t>(GgufType::kF64);
}

uint64_t align_up(uint64_t offset, uint64_t alignment) {
  return offset + (alignment - offset % alignment) % alignment;
}

// Reads little-endian values from the mapping; every failure names the file and what was read.
class Cursor {
 public:
  explicit Cursor(const MappedFile& file) : file_(file) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw InputError(file_.path() + ": " + message + " (at byte " + std::to_string(pos_) + ")");
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return file_.size() - pos_; }

  template <typename T>
  T read(const std::string& what) {
    if (remaining() < sizeof(T)) fail("the file ends inside " + what);
    T value;
    std::memcpy(&value, file_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return value;
  }
  std::string read_string(const std::string& what) {
    const auto length = read<uint64_t>(what + " (its length)");
    if (length > remaining()) {
      fail(what + " claims " + std::to_string(length) + " bytes, past the end of the file");
    }
    std::string out(reinterpret_cast<const char*>(file_.data() + pos_), length);
    pos_ += length;
    return out;
  }

 private:
  const MappedFile& file_;
  size_t pos_ = 0;
};

json read_scalar(Cursor& in, GgufType type, const std::string& what) {
  switch (type) {
    case GgufType::kU8:
      return in.read<uint8_t>(what);
    case GgufType::kI8:
      return in.read<int8_t>(what);
    case GgufType::kU16:
      return in.read<uint16_t>(what);
    case GgufType::kI16:
      return in.read<int16_t>(what);
    case GgufType::kU32:
      return in.read<uint32_t>(what);
    case GgufType::kI32:
      return in.read<int32_t>(what);
    case GgufType::kU64:
      return in.read<uint64_t>(what);
    case GgufType::kI64:
      return in.read<int64_t>(what);
    case GgufType::kF32:
      return static_cast<double>(in.read<float>(what));
    case GgufType::kF64:
      return in.read<double>(what);
    case GgufType::kBool: {
      const auto b = in.read<uint8_t>(what);
      if (b > 1) in.fail(what + ": a bool must be 0 or 1, found " + std::to_string(b));
      return b == 1;
    }
    case GgufType::kString:
      return in.read_string(what);
    default:
      in.fail(what + ": unexpected value type " + std::to_string(static_cast<uint32_t>(type)));
  }
}

GgufValue read_value(Cursor& in, const std::string& key) {
  const std::string what = "the value of '" + key + "'";
  const auto type = in.read<uint32_t>(what + " (its type)");
  if (!known_type(type)) in.fail(what + ": unknown value type " + std::to_string(type));
  GgufValue value;
  value.type = static_cast<GgufType>(type);
  if (value.type != GgufType::kArray) {
    value.element = value.type;
    value.value = read_scalar(in, value.type, what);
    return value;
  }
  const auto element = in.read<uint32_t>(what + " (its element type)");
  if (!known_type(element)) in.fail(what + ": unknown element type " + std::to_string(element));
  value.element = static_cast<GgufType>(element);
  if (value.element == GgufType::kArray) in.fail(what + ": arrays of arrays are not supported");
  const auto count = in.read<uint64_t>(what + " (its length)");
  // Each element takes at least one byte (a string at least eight): a count past that is a lie.
  const size_t least = value.element == GgufType::kString ? 8 : scalar_size(value.element);
  if (count > in.remaining() / least) {
    in.fail(what + " claims " + std::to_string(count) + " elements, past the end of the file");
  }
  value.value = json::array();
  value.value.get_ref<json::array_t&>().reserve(count);
  for (uint64_t i = 0; i < count; ++i)
    value.value.push_back(read_scalar(in, value.element, what + "[" + std::to_string(i) + "]"));
  return value;
}

[[noreturn]] void wrong_type(const GgufFile& file, const std::string& key,
                             const std::string& expected, const GgufValue& found) {
  std::string found_name = gguf_type_name(found.type);
  if (found.type == GgufType::kArray) {
    found_name = std::string("array of ") + gguf_type_name(found.element);
  }
  throw InputError(file.path() + ": metadata '" + key + "': expected " + expected + ", found " +
                   found_name);
}

bool is_integer(GgufType type) {
  return type == GgufType::kU8 || type == GgufType::kI8 || type == GgufType::kU16 ||
         type == GgufType::kI16 || type == GgufType::kU32 || type == GgufType::kI32 ||
         type == GgufType::kU64 || type == GgufType::kI64;
}

// Appends the bytes of `value` (checked against its type) to `out`.
void write_scalar(std::string& out, GgufType type, const json& value, const std::string& what) {
  auto put = [&](auto v) { out.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  auto integer = [&](int64_t lo, uint64_t hi) -> uint64_t {
    if (!value.is_number_integer()) throw Error(what + ": expected an integer");
    if (value.is_number_unsigned()) {
      if (value.get<uint64_t>() > hi) throw Error(what + ": out of range");
      return value.get<uint64_t>();
    }
    const auto v = value.get<int64_t>();
    if (v < lo || (v > 0 && static_cast<uint64_t>(v) > hi)) throw Error(what + ": out of range");
    return static_cast<uint64_t>(v);
  };
  switch (type) {
    case GgufType::kU8:
      return put(static_cast<uint8_t>(integer(0, UINT8_MAX)));
    case GgufType::kI8:
      return put(static_cast<int8_t>(integer(INT8_MIN, INT8_MAX)));
    case GgufType::kU16:
      return put(static_cast<uint16_t>(integer(0, UINT16_MAX)));
    case GgufType::kI16:
      return put(static_cast<int16_t>(integer(INT16_MIN, INT16_MAX)));
    case GgufType::kU32:
      return put(static_cast<uint32_t>(integer(0, UINT32_MAX)));
    case GgufType::kI32:
      return put(static_cast<int32_t>(integer(INT32_MIN, INT32_MAX)));
    case GgufType::kU64:
      return put(static_cast<uint64_t>(integer(0, UINT64_MAX)));
    case GgufType::kI64:
      return put(static_cast<int64_t>(integer(INT64_MIN, INT64_MAX)));
    case GgufType::kF32:
    case GgufType::kF64:
      if (!value.is_number()) throw Error(what + ": expected a number");
      if (type == GgufType::kF32) return put(static_cast<float>(value.get<double>()));
      return put(value.get<double>());
    case GgufType::kBool:
      if (!value.is_boolean()) throw Error(what + ": expected a bool");
      return put(static_cast<uint8_t>(value.get<bool>() ? 1 : 0));
    case GgufType::kString: {
      if (!value.is_string()) throw Error(what + ": expected a string");
      const std::string& s = value.get_ref<const std::string&>();
      put(static_cast<uint64_t>(s.size()));
      out += s;
      return;
    }
    default:
      throw Error(what + ": cannot write value type " + gguf_type_name(type));
  }
}

void write_string(std::string& out, const std::string& s) {
  write_scalar(out, GgufType::kString, s, "string");
}

}  // namespace

const char* gguf_type_name(GgufType type) {
  static const char* const names[] = {"u8",   "i8",     "u16",   "i16", "u32", "i32", "f32",
                                      "bool", "string", "array", "u64", "i64", "f64"};
  const auto index = static_cast<uint32_t>(type);
  return index < 13 ? names[index] : "?";
}

const GgmlTypeInfo* ggml_type_info(uint32_t type) {
  const auto& table = type_table();
  auto it = table.find(type);
  return it == table.end() ? nullptr : &it->second;
}

std::string ggml_type_name(GgmlType type) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  return info ? info->name : "type " + std::to_string(static_cast<uint32_t>(type));
}

uint64_t ggml_nbytes(GgmlType type, const std::vector<int64_t>& ne, const std::string& what) {
  const GgmlTypeInfo* info = ggml_type_info(static_cast<uint32_t>(type));
  if (!info) throw InputError(what + ": unknown ggml " + ggml_type_name(type));
  if (ne.empty() || ne.size() > kMaxDims) {
    throw InputError(what + ": expected 1 to 4 dimensions, found " + std::to_string(ne.size()));
  }
  uint64_t elements = 1;
  for (int64_t n : ne) {
    if (n < 0) throw InputError(what + ": negative dimension " + std::to_string(n));
    if (n > 0 && elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) /
                                static_cast<uint64_t>(n)) {
      throw InputError(what + ": the element count overflows");
    }
    elements *= static_cast<uint64_t>(n);
  }
  if (ne[0] % info->block_elements != 0) {
    throw InputError(what + ": ne[0] = " + std::to_string(ne[0]) + " is not a multiple of " +
                     std::to_string(info->block_elements) + ", the block size of " + info->name);
  }
  return elements / static_cast<uint64_t>(info->block_elements) *
         static_cast<uint64_t>(info->block_bytes);
}

std::shared_ptr<const GgufFile> GgufFile::open(const std::string& path) {
  auto out = std::shared_ptr<GgufFile>(new GgufFile());
  out->file_ = MappedFile::open(path);
  Cursor in(*out->file_);
  const auto magic = in.read<uint32_t>("the magic number");
  if (magic != kMagic) in.fail("not a GGUF file (the first four bytes are not \"GGUF\")");
  out->version_ = in.read<uint32_t>("the version");
  if (out->version_ > 0xFFFF) {
    in.fail("version " + std::to_string(out->version_) +
            " reads as a big-endian file, which align does not read");
  }
  if (out->version_ != 2 && out->version_ != 3) {
    in.fail("GGUF version " + std::to_string(out->version_) + " (align reads versions 2 and 3)");
  }
  const auto tensor_count = in.read<uint64_t>("the tensor count");
  const auto kv_count = in.read<uint64_t>("the metadata count");
  // A key-value pair takes at least 8 + 4 + 1 bytes, a tensor info at least 8 + 4 + 8 + 4 + 8.
  if (kv_count > in.remaining() / 13 || tensor_count > in.remaining() / 32) {
    in.fail("the header claims " + std::to_string(kv_count) + " metadata pairs and " +
            std::to_string(tensor_count) + " tensors, more than the file can hold");
  }

  std::set<std::string> keys;
  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key = in.read_string("metadata key " + std::to_string(i));
    if (key.empty()) in.fail("metadata key " + std::to_string(i) + " is empty");
    if (!keys.insert(key).second) in.fail("metadata key '" + key + "' appears twice");
    GgufValue value = read_value(in, key);
    out->metadata_.emplace_back(std::move(key), std::move(value));
  }
  if (const GgufValue* a = out->find("general.alignment")) {
    if (a->type != GgufType::kU32) wrong_type(*out, "general.alignment", "u32", *a);
    const auto alignment = a->value.get<uint32_t>();
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
      throw InputError(path + ": metadata 'general.alignment': expected a power of two, found " +
                       std::to_string(alignment));
    }
    out->alignment_ = alignment;
  }

  std::set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensor t;
    t.name = in.read_string("the name of tensor " + std::to_string(i));
    const std::string what = "tensor '" + t.name + "'";
    if (t.name.empty() || t.name.size() > kMaxNameBytes) {
      in.fail(what + ": names must be 1 to 63 bytes long");
    }
    if (!names.insert(t.name).second) in.fail(what + " appears twice");
    const auto n_dims = in.read<uint32_t>(what + " (its dimension count)");
    if (n_dims == 0 || n_dims > kMaxDims) {
      in.fail(what + ": expected 1 to 4 dimensions, found " + std::to_string(n_dims));
    }
    for (uint32_t d = 0; d < n_dims; ++d) {
      const auto n = in.read<uint64_t>(what + " (its dimensions)");
      if (n > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        in.fail(what + ": dimension " + std::to_string(n) + " is too large");
      }
      t.ne.push_back(static_cast<int64_t>(n));
    }
    const auto type = in.read<uint32_t>(what + " (its type)");
    if (!ggml_type_info(type)) in.fail(what + ": unknown ggml type " + std::to_string(type));
    t.type = static_cast<GgmlType>(type);
    t.offset = in.read<uint64_t>(what + " (its offset)");
    if (t.offset % out->alignment_ != 0) {
      in.fail(what + ": offset " + std::to_string(t.offset) +
              " is not a multiple of the alignment " + std::to_string(out->alignment_));
    }
    t.nbytes = ggml_nbytes(t.type, t.ne, path + ": " + what);
    out->tensors_.push_back(std::move(t));
  }

  const uint64_t data_start = align_up(in.pos(), out->alignment_);
  const uint64_t size = out->file_->size();
  if (data_start > size && tensor_count > 0) {
    throw InputError(path + ": the tensor data would start at byte " + std::to_string(data_start) +
                     ", past the end of the file (" + std::to_string(size) + " bytes)");
  }
  std::vector<const GgufTensor*> by_offset;
  for (GgufTensor& t : out->tensors_) {
    if (t.offset > size - data_start || t.nbytes > size - data_start - t.offset) {
      throw InputError(path + ": tensor '" + t.name + "' (" + std::to_string(t.nbytes) +
                       " bytes at data offset " + std::to_string(t.offset) +
                       ") runs past the end of the file");
    }
    t.data = out->file_->data() + data_start + t.offset;
    by_offset.push_back(&t);
  }
  std::sort(by_offset.begin(), by_offset.end(),
            [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const GgufTensor& a = *by_offset[i - 1];
    const GgufTensor& b = *by_offset[i];
    if (a.offset + a.nbytes > b.offset) {
      throw InputError(path + ": tensors '" + a.name + "' and '" + b.name + "' overlap");
    }
  }
  return out;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

const GgufTensor* GgufFile::find_tensor(const std::string& name) const {
  for (const GgufTensor& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

std::optional<int64_t> GgufFile::get_int(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!is_integer(v->type)) wrong_type(*this, key, "an integer", *v);
  if (v->value.is_number_unsigned() &&
      v->value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    throw InputError(path() + ": metadata '" + key + "': value too large");
  }
  return v->value.get<int64_t>();
}

std::optional<double> GgufFile::get_float(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kF32 && v->type != GgufType::kF64) wrong_type(*this, key, "f32", *v);
  return v->value.get<double>();
}

std::optional<std::string> GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kString) wrong_type(*this, key, "a string", *v);
  return v->value.get<std::string>();
}

std::optional<bool> GgufFile::get_bool(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::kBool) wrong_type(*this, key, "a bool", *v);
  return v->value.get<bool>();
}

int64_t GgufFile::require_int(const std::string& key) const {
  auto v = get_int(key);
  if (!v) throw InputError(path() + ": metadata '" + key + "' is missing");
  return *v;
}

const nlohmann::json* GgufFile::get_array(const std::string& key, GgufType element) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::kArray || v->element != element) {
    wrong_type(*this, key, std::string("an array of ") + gguf_type_name(element), *v);
  }
  return &v->value;
}

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(GgufTensorSource tensor) {
  for (const GgufTensorSource& t : tensors_) {
    if (t.name == tensor.name) throw InputError("GGUF tensor '" + tensor.name + "' added twice");
  }
  if (tensor.name.empty() || tensor.name.size() > kMaxNameBytes) {
    throw InputError("GGUF tensor name '" + tensor.name + "': names must be 1 to 63 bytes long");
  }
  tensors_.push_back(std::move(tensor));
}

void GgufWriter::write(const std::string& path) const {
  std::string head;
  auto put = [&](auto v) { head.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  put(kMagic);
  put(uint32_t{3});
  put(static_cast<uint64_t>(tensors_.size()));
  put(static_cast<uint64_t>(metadata_.size()));
  for (const auto& [key, value] : metadata_) {
    write_string(head, key);
    put(static_cast<uint32_t>(value.type));
    const std::string what = "GGUF metadata '" + key + "'";
    if (value.type != GgufType::kArray) {
      write_scalar(head, value.type, value.value, what);
      continue;
    }
    if (!value.value.is_array()) throw Error(what + ": expected an array");
    put(static_cast<uint32_t>(value.element));
    put(static_cast<uint64_t>(value.value.size()));
    for (const json& element : value.value)
      write_scalar(head, value.element, element, what);
  }
  std::vector<uint64_t> sizes;
  uint64_t offset = 0;
  for (const GgufTensorSource& t : tensors_) {
    sizes.push_back(ggml_nbytes(t.type, t.ne, "GGUF tensor '" + t.name + "'"));
    write_string(head, t.name);
    put(static_cast<uint32_t>(t.ne.size()));
    for (int64_t n : t.ne)
      put(static_cast<uint64_t>(n));
    put(static_cast<uint32_t>(t.type));
    put(offset);
    offset = align_up(offset + sizes.back(), kDefaultAlignment);
  }
  head.resize(align_up(head.size(), kDefaultAlignment), '\0');

  AtomicFile file(path);
  file.write(head);
  static const char kZeros[kDefaultAlignment] = {};
  for (size_t i = 0; i < tensors_.size(); ++i) {
    uint64_t written = 0;
    tensors_[i].write_bytes([&](const void* data, size_t n) {
      file.write(data, n);
      written += n;
    });
    if (written != sizes[i]) {
      throw Error("GGUF tensor '" + tensors_[i].name + "': " + std::to_string(written) +
                  " bytes produced, " + std::to_string(sizes[i]) + " expected");
    }
    file.write(kZeros, align_up(written, kDefaultAlignment) - written);
  }
  file.commit();
}

}  // namespace align
