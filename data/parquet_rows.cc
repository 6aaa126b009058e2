#include "data/parquet_rows.h"

#include <arrow/api.h>
#include <arrow/io/file.h>
#include <arrow/util/float16.h>
#include <parquet/arrow/reader.h>
#include <parquet/exception.h>
#include <parquet/metadata.h>

#include <algorithm>
#include <functional>

#include "common/error.h"
#include "common/json_parse.h"

namespace align {
namespace {

using nlohmann::json;

// Writes the value at row i of an array into *out.
using PutValue = std::function<void(int64_t i, json* out)>;

// Bytes of decoded values per record batch: rows are read in batches of about this size, so a
// file of long rows is not decoded a whole row group at once.
constexpr int64_t kBatchBytes = 32 << 20;
constexpr int64_t kMaxBatchRows = 64 * 1024;

template <typename T>
T unwrap(arrow::Result<T> result, const std::string& path) {
  if (!result.ok()) throw IoError(path + ": " + result.status().ToString());
  return std::move(result).ValueUnsafe();
}

void check(const arrow::Status& status, const std::string& path) {
  if (!status.ok()) throw IoError(path + ": " + status.ToString());
}

// A value that is null (at any level) is JSON null; `put` writes the others.
template <typename Put>
PutValue with_nulls(const std::shared_ptr<arrow::Array>& array, Put put) {
  if (array->null_count() == 0) return put;
  return [array, put](int64_t i, json* out) {
    if (array->IsNull(i)) {
      *out = nullptr;
    } else {
      put(i, out);
    }
  };
}

template <typename ArrayType>
PutValue put_number(const std::shared_ptr<arrow::Array>& array) {
  auto typed = std::static_pointer_cast<ArrayType>(array);
  return with_nulls(array, [typed](int64_t i, json* out) { *out = typed->Value(i); });
}

template <typename ArrayType>
PutValue put_string(const std::shared_ptr<arrow::Array>& array) {
  auto typed = std::static_pointer_cast<ArrayType>(array);
  return with_nulls(array, [typed](int64_t i, json* out) {
    const std::string_view view = typed->GetView(i);
    *out = std::string(view.data(), view.size());
  });
}

PutValue make_put(const std::shared_ptr<arrow::Array>& array);

// list, large_list, fixed_size_list, list_view, large_list_view: offsets into one child array.
template <typename ArrayType>
PutValue put_list(const std::shared_ptr<arrow::Array>& array) {
  auto typed = std::static_pointer_cast<ArrayType>(array);
  PutValue element = make_put(typed->values());
  return with_nulls(array, [typed, element](int64_t i, json* out) {
    const int64_t begin = typed->value_offset(i);
    const int64_t n = typed->value_length(i);
    *out = json::array();
    json::array_t& items = out->get_ref<json::array_t&>();
    items.resize(static_cast<size_t>(n));
    for (int64_t k = 0; k < n; ++k)
      element(begin + k, &items[static_cast<size_t>(k)]);
  });
}

PutValue put_struct(const std::shared_ptr<arrow::Array>& array) {
  auto typed = std::static_pointer_cast<arrow::StructArray>(array);
  std::vector<std::pair<std::string, PutValue>> fields;
  for (int k = 0; k < typed->num_fields(); ++k)
    fields.emplace_back(typed->struct_type()->field(k)->name(), make_put(typed->field(k)));
  return with_nulls(array, [fields](int64_t i, json* out) {
    *out = json::object();
    for (const auto& [name, put] : fields)
      put(i, &(*out)[name]);
  });
}

PutValue put_map(const std::shared_ptr<arrow::Array>& array) {
  auto typed = std::static_pointer_cast<arrow::MapArray>(array);
  PutValue key = make_put(typed->keys());
  PutValue item = make_put(typed->items());
  const arrow::Type::type key_type = typed->keys()->type_id();
  const bool string_keys = key_type == arrow::Type::STRING ||
                           key_type == arrow::Type::LARGE_STRING ||
                           key_type == arrow::Type::STRING_VIEW;
  return with_nulls(array, [typed, key, item, string_keys](int64_t i, json* out) {
    const int64_t begin = typed->value_offset(i);
    const int64_t n = typed->value_length(i);
    *out = string_keys ? json::object() : json::array();
    for (int64_t k = begin; k < begin + n; ++k) {
      json name, value;
      key(k, &name);
      item(k, &value);
      if (string_keys) {
        (*out)[name.get<std::string>()] = std::move(value);
      } else {
        out->push_back(json::array({std::move(name), std::move(value)}));
      }
    }
  });
}

// Dates, times, decimals, durations, intervals: Arrow's text of the value.
PutValue put_text_of(const std::shared_ptr<arrow::Array>& array) {
  return with_nulls(array, [array](int64_t i, json* out) {
    arrow::Result<std::shared_ptr<arrow::Scalar>> scalar = array->GetScalar(i);
    *out = scalar.ok() ? (*scalar)->ToString() : scalar.status().ToString();
  });
}

PutValue make_put(const std::shared_ptr<arrow::Array>& array) {
  switch (array->type_id()) {
    case arrow::Type::BOOL:
      return put_number<arrow::BooleanArray>(array);
    case arrow::Type::INT8:
      return put_number<arrow::Int8Array>(array);
    case arrow::Type::INT16:
      return put_number<arrow::Int16Array>(array);
    case arrow::Type::INT32:
      return put_number<arrow::Int32Array>(array);
    case arrow::Type::INT64:
      return put_number<arrow::Int64Array>(array);
    case arrow::Type::UINT8:
      return put_number<arrow::UInt8Array>(array);
    case arrow::Type::UINT16:
      return put_number<arrow::UInt16Array>(array);
    case arrow::Type::UINT32:
      return put_number<arrow::UInt32Array>(array);
    case arrow::Type::UINT64:
      return put_number<arrow::UInt64Array>(array);
    case arrow::Type::FLOAT:
      return put_number<arrow::FloatArray>(array);
    case arrow::Type::DOUBLE:
      return put_number<arrow::DoubleArray>(array);
    case arrow::Type::HALF_FLOAT: {
      auto typed = std::static_pointer_cast<arrow::HalfFloatArray>(array);
      return with_nulls(array, [typed](int64_t i, json* out) {
        *out = arrow::util::Float16::FromBits(typed->Value(i)).ToDouble();
      });
    }
    case arrow::Type::STRING:
      return put_string<arrow::StringArray>(array);
    case arrow::Type::LARGE_STRING:
      return put_string<arrow::LargeStringArray>(array);
    case arrow::Type::STRING_VIEW:
      return put_string<arrow::StringViewArray>(array);
    case arrow::Type::LIST:
      return put_list<arrow::ListArray>(array);
    case arrow::Type::LARGE_LIST:
      return put_list<arrow::LargeListArray>(array);
    case arrow::Type::FIXED_SIZE_LIST:
      return put_list<arrow::FixedSizeListArray>(array);
    case arrow::Type::LIST_VIEW:
      return put_list<arrow::ListViewArray>(array);
    case arrow::Type::LARGE_LIST_VIEW:
      return put_list<arrow::LargeListViewArray>(array);
    case arrow::Type::STRUCT:
      return put_struct(array);
    case arrow::Type::MAP:
      return put_map(array);
    case arrow::Type::DICTIONARY: {
      auto typed = std::static_pointer_cast<arrow::DictionaryArray>(array);
      PutValue value = make_put(typed->dictionary());
      return with_nulls(
          array, [typed, value](int64_t i, json* out) { value(typed->GetValueIndex(i), out); });
    }
    case arrow::Type::EXTENSION:
      return make_put(std::static_pointer_cast<arrow::ExtensionArray>(array)->storage());
    case arrow::Type::DATE32:
    case arrow::Type::DATE64:
    case arrow::Type::TIMESTAMP:
    case arrow::Type::TIME32:
    case arrow::Type::TIME64:
    case arrow::Type::DURATION:
    case arrow::Type::DECIMAL32:
    case arrow::Type::DECIMAL64:
    case arrow::Type::DECIMAL128:
    case arrow::Type::DECIMAL256:
    case arrow::Type::INTERVAL_MONTHS:
    case arrow::Type::INTERVAL_DAY_TIME:
    case arrow::Type::INTERVAL_MONTH_DAY_NANO:
      return put_text_of(array);
    default:  // null, binary kinds (unions and run-end encoded are refused at open)
      return [](int64_t, json* out) { *out = nullptr; };
  }
}

// The nesting depth of a type; throws for a type that is not read.
int type_depth(const arrow::DataType& type, const std::string& column) {
  switch (type.id()) {
    case arrow::Type::SPARSE_UNION:
    case arrow::Type::DENSE_UNION:
    case arrow::Type::RUN_END_ENCODED:
      throw InputError("column " + column + ": Arrow type " + type.ToString() +
                       " is not read (docs/datasets.md lists the types that are)");
    case arrow::Type::DICTIONARY:
      return type_depth(*static_cast<const arrow::DictionaryType&>(type).value_type(), column);
    case arrow::Type::EXTENSION:
      return type_depth(*static_cast<const arrow::ExtensionType&>(type).storage_type(), column);
    default:
      break;
  }
  int deepest = 0;
  for (const std::shared_ptr<arrow::Field>& child : type.fields())
    deepest = std::max(deepest, type_depth(*child->type(), column));
  return deepest + (type.num_fields() > 0 ? 1 : 0);
}

}  // namespace

struct ParquetRows::Impl {
  std::string path;
  std::unique_ptr<parquet::arrow::FileReader> reader;
  std::vector<ParquetColumn> columns;
  int64_t num_rows = 0;
  int num_row_groups = 0;

  int next_group = 0;  // the row group to open when the batch reader runs out
  std::unique_ptr<arrow::RecordBatchReader> batches;
  std::shared_ptr<arrow::RecordBatch> batch;
  std::vector<std::pair<std::string, PutValue>> puts;  // per column, for `batch`
  int64_t batch_row = 0;
  int64_t row = 0;

  // Loads the next non-empty batch; false at the end of the file.
  bool advance() {
    while (true) {
      if (batches) {
        std::shared_ptr<arrow::RecordBatch> next;
        check(batches->ReadNext(&next), path);
        if (next) {
          if (next->num_rows() == 0) continue;
          batch = std::move(next);
          batch_row = 0;
          puts.clear();
          for (int c = 0; c < batch->num_columns(); ++c)
            puts.emplace_back(batch->schema()->field(c)->name(), make_put(batch->column(c)));
          return true;
        }
        batches.reset();
      }
      if (next_group >= num_row_groups) return false;
      batches = unwrap(reader->GetRecordBatchReader(std::vector<int>{next_group++}), path);
    }
  }
};

ParquetRows::ParquetRows(const std::string& path) : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.path = path;
  try {
    std::shared_ptr<arrow::io::ReadableFile> file =
        unwrap(arrow::io::ReadableFile::Open(path), path);
    parquet::arrow::FileReaderBuilder builder;
    const arrow::Status opened = builder.Open(file);
    if (!opened.ok()) throw InputError(path + ": not a Parquet file (" + opened.ToString() + ")");
    const std::shared_ptr<parquet::FileMetaData> meta = builder.raw_reader()->metadata();
    // Rows per batch from the file's mean decoded row size, so one batch is about kBatchBytes.
    int64_t bytes = 0;
    for (int g = 0; g < meta->num_row_groups(); ++g)
      bytes += meta->RowGroup(g)->total_byte_size();
    const int64_t row_bytes = std::max<int64_t>(1, bytes / std::max<int64_t>(1, meta->num_rows()));
    parquet::ArrowReaderProperties properties;
    properties.set_batch_size(std::clamp<int64_t>(kBatchBytes / row_bytes, 1, kMaxBatchRows));
    builder.properties(properties);
    m.reader = unwrap(builder.Build(), path);
    m.num_rows = meta->num_rows();
    m.num_row_groups = meta->num_row_groups();
    std::shared_ptr<arrow::Schema> schema;
    check(m.reader->GetSchema(&schema), path);
    for (const std::shared_ptr<arrow::Field>& field : schema->fields()) {
      if (type_depth(*field->type(), field->name()) >= kMaxJsonDepth) {
        throw InputError("column " + field->name() + ": nested deeper than " +
                         std::to_string(kMaxJsonDepth) + " levels");
      }
      m.columns.push_back({field->name(), field->type()->ToString()});
    }
  } catch (const InputError& e) {
    const std::string what = e.what();
    throw InputError(what.rfind(path, 0) == 0 ? what : path + ": " + what);
  } catch (const parquet::ParquetException& e) {
    throw InputError(path + ": not a readable Parquet file (" + e.what() + ")");
  }
}

ParquetRows::~ParquetRows() = default;

int64_t ParquetRows::num_rows() const {
  return impl_->num_rows;
}

const std::vector<ParquetColumn>& ParquetRows::columns() const {
  return impl_->columns;
}

int64_t ParquetRows::next_row() const {
  return impl_->row;
}

bool ParquetRows::next(json* row) {
  Impl& m = *impl_;
  try {
    if (!m.batch || m.batch_row >= m.batch->num_rows()) {
      m.batch.reset();
      if (!m.advance()) return false;
    }
  } catch (const parquet::ParquetException& e) {
    throw IoError(m.path + ": row " + std::to_string(m.row) + ": " + e.what());
  }
  *row = json::object();
  json::object_t& object = row->get_ref<json::object_t&>();
  for (const auto& [name, put] : m.puts)
    put(m.batch_row, &object[name]);
  ++m.batch_row;
  ++m.row;
  return true;
}

}  // namespace align
