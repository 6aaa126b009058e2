#include "train/metrics.h"

#include <cerrno>
#include <cstring>

#include "common/atomic_file.h"
#include "common/error.h"
#include "common/json_parse.h"

namespace align {

MetricsWriter::MetricsWriter(std::string path) : path_(std::move(path)) {
  open();
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::open() {
  file_ = std::fopen(path_.c_str(), "ab");
  if (!file_) throw IoError("cannot open " + path_ + " for appending: " + std::strerror(errno));
}

void MetricsWriter::write(const nlohmann::json& record) {
  if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer()) {
    throw Error("metrics record needs an integer \"step\": " + record.dump());
  }
  std::string line = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0) {
    throw IoError("cannot write " + path_ + ": " + std::strerror(errno));
  }
}

void MetricsWriter::truncate_after(int64_t step) {
  // The open handle keeps appending to the old file until the rewrite has replaced it.
  const std::string text = read_file(path_);
  std::string kept;
  size_t begin = 0, line_no = 0;
  while (begin < text.size()) {
    ++line_no;
    const size_t end = text.find('\n', begin);
    const bool complete = end != std::string::npos;
    const std::string line = text.substr(begin, complete ? end - begin : std::string::npos);
    begin = complete ? end + 1 : text.size();
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record;
    try {
      record = parse_json(line, path_ + ":" + std::to_string(line_no));
    } catch (const InputError&) {
      if (!complete) break;  // the torn last line of a killed run
      throw;
    }
    if (!record.is_object() || !record.contains("step") || !record["step"].is_number_integer()) {
      throw InputError(path_ + ":" + std::to_string(line_no) +
                       ": expected an object with an integer \"step\"");
    }
    if (record["step"].get<int64_t>() <= step) {
      kept += line;
      kept.push_back('\n');
    }
  }
  write_file_atomic(path_, kept);
  std::fclose(file_);
  open();
}

}  // namespace align
