#include "common/jsonl.h"
#include "common/json_parse.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/error.h"

namespace align {

void for_each_jsonl(const std::string& path,
                    const std::function<void(const nlohmann::json&, const JsonlLocation&)>& fn,
                    const JsonlReadOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open " + path + ": " + std::strerror(errno));
  std::string line;
  JsonlLocation where{path, 0};
  size_t records = 0;
  while ((options.limit == 0 || records < options.limit) && std::getline(in, line)) {
    ++where.line;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    nlohmann::json record;
    try {
      record = parse_json(line, where.str());
    } catch (const InputError& e) {
      if (!options.on_bad_line) throw;
      options.on_bad_line(e.what());
      continue;
    }
    ++records;
    try {
      fn(record, where);
    } catch (const InputError& e) {
      throw InputError(where.str() + ": " + e.what());
    } catch (const nlohmann::json::exception& e) {
      throw InputError(where.str() + ": " + e.what());
    }
  }
  if (in.bad()) throw IoError("cannot read " + path);
}

void JsonlWriter::write(const nlohmann::json& record) {
  std::string text = record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  text.push_back('\n');
  file_.write(text);
}

}  // namespace align
