#include "model/safetensors.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"

namespace align {
namespace {

// Hugging Face's reader refuses headers above 100 MB; so do we.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  size_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {Dtype::BOOL, "BOOL", 1},       {Dtype::U8, "U8", 1},           {Dtype::I8, "I8", 1},
    {Dtype::F8_E5M2, "F8_E5M2", 1}, {Dtype::F8_E4M3, "F8_E4M3", 1}, {Dtype::I16, "I16", 2},
    {Dtype::U16, "U16", 2},         {Dtype::F16, "F16", 2},         {Dtype::BF16, "BF16", 2},
    {Dtype::I32, "I32", 4},         {Dtype::U32, "U32", 4},         {Dtype::F32, "F32", 4},
    {Dtype::F64, "F64", 8},         {Dtype::I64, "I64", 8},         {Dtype::U64, "U64", 8},
};

const DtypeInfo& info(Dtype dtype) {
  for (const auto& d : kDtypes) {
    if (d.dtype == dtype) return d;
  }
  throw Error("unknown safetensors dtype enum value");
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | p[i];
  return v;
}

uint64_t as_u64(const nlohmann::json& j, const std::string& context) {
  if (!j.is_number_unsigned()) {
    throw InputError(context + ": expected a non-negative integer, found " + j.dump());
  }
  return j.get<uint64_t>();
}

// A header entry before its offsets are checked against the buffer.
struct Entry {
  TensorView view;
  uint64_t begin = 0;
};

Entry parse_entry(const std::string& name, const nlohmann::json& entry, const std::string& where) {
  std::string context = where + ": tensor '" + name + "'";
  if (!entry.is_object()) throw InputError(context + ": expected an object, found " + entry.dump());
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) throw InputError(context + ": missing field '" + key + "'");
  }
  TensorView view;
  view.name = name;
  const auto& dtype = entry["dtype"];
  if (!dtype.is_string()) throw InputError(context + ": 'dtype' must be a string");
  view.dtype = parse_dtype(dtype.get<std::string>(), context);
  const auto& shape = entry["shape"];
  if (!shape.is_array()) throw InputError(context + ": 'shape' must be an array");
  uint64_t count = 1;
  for (const auto& dim : shape) {
    uint64_t d = as_u64(dim, context + " shape");
    if (d > 0 && count > std::numeric_limits<uint64_t>::max() / 16 / d) {
      throw InputError(context + ": shape " + shape.dump() + " is too large");
    }
    count *= d;
    view.shape.push_back(static_cast<int64_t>(d));
  }
  const auto& offsets = entry["data_offsets"];
  if (!offsets.is_array() || offsets.size() != 2) {
    throw InputError(context + ": 'data_offsets' must be [begin, end], found " + offsets.dump());
  }
  uint64_t begin = as_u64(offsets[0], context + " data_offsets");
  uint64_t end = as_u64(offsets[1], context + " data_offsets");
  if (end < begin) throw InputError(context + ": data_offsets end < begin " + offsets.dump());
  view.nbytes = end - begin;
  uint64_t expected = count * dtype_size(view.dtype);
  if (view.nbytes != expected) {
    throw InputError(context + ": shape " + shape.dump() + " of " + dtype_name(view.dtype) +
                     " needs " + std::to_string(expected) + " bytes, data_offsets span " +
                     std::to_string(view.nbytes));
  }
  return {view, begin};
}

}  // namespace

size_t dtype_size(Dtype dtype) {
  return info(dtype).size;
}
const char* dtype_name(Dtype dtype) {
  return info(dtype).name;
}

Dtype parse_dtype(const std::string& name, const std::string& context) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return d.dtype;
  }
  throw InputError(context + ": unknown dtype '" + name +
                   "' (expected one of BOOL U8 I8 F8_E5M2 F8_E4M3 I16 U16 F16 BF16 I32 U32 F32 "
                   "F64 I64 U64)");
}

int64_t num_elements(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  auto result = std::make_shared<SafetensorsFile>();
  result->file_ = MappedFile::open(path);
  const uint8_t* base = result->file_->data();
  const uint64_t size = result->file_->size();
  if (size < 8) {
    throw InputError(path + ": truncated safetensors file (" + std::to_string(size) +
                     " bytes; expected an 8-byte header length first)");
  }
  const uint64_t header_len = read_u64_le(base);
  if (header_len > kMaxHeaderBytes) {
    throw InputError(path + ": header length " + std::to_string(header_len) +
                     " is larger than the 100 MB limit (not a safetensors file?)");
  }
  if (header_len > size - 8) {
    throw InputError(path + ": header length " + std::to_string(header_len) +
                     " runs past the end of the file (" + std::to_string(size) +
                     " bytes): truncated?");
  }
  const nlohmann::json header =
      parse_json(std::string_view(reinterpret_cast<const char*>(base) + 8, header_len),
                 path + ": header", {/*reject_duplicate_keys=*/true});
  if (!header.is_object()) throw InputError(path + ": header must be a JSON object");

  std::vector<Entry> entries;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) throw InputError(path + ": __metadata__ must be an object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) {
          throw InputError(path + ": __metadata__ '" + mk + "' must be a string, found " +
                           mv.dump());
        }
        result->metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    entries.push_back(parse_entry(key, value, path));
  }
  // Tensors must tile the data buffer exactly: sorted by offset, no gap, no overlap.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::make_pair(a.begin, a.view.nbytes) < std::make_pair(b.begin, b.view.nbytes);
  });
  const uint64_t buffer_len = size - 8 - header_len;
  const uint8_t* buffer = base + 8 + header_len;
  uint64_t expected_begin = 0;
  for (auto& [view, begin] : entries) {
    if (begin != expected_begin) {
      throw InputError(path + ": tensor '" + view.name + "' starts at byte " +
                       std::to_string(begin) + " of the data buffer, expected " +
                       std::to_string(expected_begin) +
                       (begin < expected_begin ? " (overlaps the previous tensor)"
                                               : " (gap after the previous tensor)"));
    }
    if (begin + view.nbytes > buffer_len) {
      throw InputError(path + ": tensor '" + view.name + "' ends at byte " +
                       std::to_string(begin + view.nbytes) + " but the data buffer has " +
                       std::to_string(buffer_len) + " bytes: truncated file?");
    }
    expected_begin = begin + view.nbytes;
    view.data = buffer + begin;
    result->tensors_.emplace(view.name, view);
  }
  if (expected_begin != buffer_len) {
    throw InputError(path + ": tensors cover " + std::to_string(expected_begin) + " bytes of a " +
                     std::to_string(buffer_len) + "-byte data buffer (trailing bytes)");
  }
  return result;
}

void write_safetensors(const std::string& path, const std::vector<TensorSource>& tensors,
                       std::map<std::string, std::string> metadata) {
  metadata.emplace("format", "pt");
  nlohmann::json header = nlohmann::json::object();
  header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    if (header.contains(t.name)) throw Error("duplicate tensor name '" + t.name + "'");
    uint64_t nbytes = static_cast<uint64_t>(num_elements(t.shape)) * dtype_size(t.dtype);
    header[t.name] = {{"dtype", dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keep the data buffer 8-byte aligned
  uint8_t len_bytes[8];
  for (int i = 0; i < 8; ++i)
    len_bytes[i] = static_cast<uint8_t>(text.size() >> (8 * i));

  AtomicFile file(path);
  file.write(len_bytes, 8);
  file.write(text);
  for (const auto& t : tensors) {
    const uint64_t expected = static_cast<uint64_t>(num_elements(t.shape)) * dtype_size(t.dtype);
    uint64_t written = 0;
    t.write_bytes([&](const void* data, size_t n) {
      written += n;
      if (written > expected) {
        throw Error("tensor '" + t.name + "' produced more than its " + std::to_string(expected) +
                    " bytes");
      }
      file.write(data, n);
    });
    if (written != expected) {
      throw Error("tensor '" + t.name + "' produced " + std::to_string(written) +
                  " bytes, expected " + std::to_string(expected));
    }
  }
  file.commit();
}

}  // namespace align
