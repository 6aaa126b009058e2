#include "pts/pts_output.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "common/atomic_file.h"
#include "common/config_reader.h"
#include "common/error.h"
#include "common/json_parse.h"
#include "common/output_dir.h"

namespace align {
namespace {

namespace fs = std::filesystem;

void append_and_sync(const std::string& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot open " + path + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      throw IoError("cannot write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  if (!synced) throw IoError("cannot sync " + path + ": " + std::strerror(errno));
}

}  // namespace

const std::vector<std::string>& PtsOutput::files() {
  static const std::vector<std::string> names = {"pivots.jsonl", "pairs.jsonl", "queries.jsonl",
                                                 "completions.jsonl", "metrics.jsonl"};
  return names;
}

PtsOutput::PtsOutput(std::string dir, const nlohmann::json& config,
                     const std::string& queries_fingerprint)
    : dir_(std::move(dir)) {
  create_output_dir(dir_, "output.dir");
  remove_stale_temp_files(dir_);
  const std::string progress_path = path("progress.json");
  if (fs::exists(progress_path)) {
    const nlohmann::json saved = parse_json(read_file(path("config.json")), path("config.json"));
    const std::vector<std::string> diff = config_differences(saved, config);
    if (!diff.empty()) {
      throw InputError(dir_ + " holds a PTS run with a different config (" + diff.front() +
                       " differs): resume it with the same config, or choose another output.dir");
    }
    progress_ = parse_json(read_file(progress_path), progress_path);
    if (!progress_.is_object() || !progress_.contains("sizes")) {
      throw InputError(progress_path + ": not a PTS progress file (delete the folder to restart)");
    }
    const std::string recorded = progress_.value("queries_fingerprint", std::string());
    if (recorded != queries_fingerprint) {
      throw InputError(dir_ + " holds a PTS run over another version of " +
                       config.at("data").value("path", std::string("the query file")) +
                       " (its contents changed since: fingerprint " + recorded + ", now " +
                       queries_fingerprint +
                       "): restore the file, or choose another output.dir for the new queries");
    }
    for (const std::string& f : files()) {
      const auto size = progress_.at("sizes").value(f, uint64_t{0});
      if (!fs::exists(path(f)) || fs::file_size(path(f)) < size) {
        throw InputError(path(f) + " is shorter than " + progress_path +
                         " records: the folder was changed by hand (delete it to restart)");
      }
      fs::resize_file(path(f), size);  // drop lines of a batch that never finished
    }
    return;
  }
  for (const std::string& f : files())
    write_file_atomic(path(f), "");
  write_file_atomic(path("config.json"), config.dump(2) + "\n");
  progress_ = {{"queries_done", 0},
               {"queries_fingerprint", queries_fingerprint},
               {"sizes", nlohmann::json::object()},
               {"totals", nlohmann::json::object()}};
  for (const std::string& f : files())
    progress_["sizes"][f] = 0;
  write_file_atomic(progress_path, progress_.dump(2) + "\n");
}

void PtsOutput::append_batch(const std::map<std::string, std::vector<nlohmann::json>>& lines,
                             int64_t queries, const nlohmann::json& add_totals) {
  for (const auto& [file, records] : lines) {
    if (!progress_.at("sizes").contains(file)) throw Error("PtsOutput: unknown file " + file);
    std::string bytes;
    for (const auto& r : records)
      bytes += r.dump() + "\n";
    if (!bytes.empty()) append_and_sync(path(file), bytes);
  }
  for (const std::string& f : files())
    progress_["sizes"][f] = fs::file_size(path(f));
  progress_["queries_done"] = queries_done() + queries;
  nlohmann::json& totals = progress_["totals"];
  for (const auto& [key, value] : add_totals.items()) {
    if (!totals.contains(key)) {
      totals[key] = value;
    } else if (value.is_number_integer() && totals[key].is_number_integer()) {
      totals[key] = totals[key].get<int64_t>() + value.get<int64_t>();
    } else {
      totals[key] = totals[key].get<double>() + value.get<double>();
    }
  }
  write_file_atomic(path("progress.json"), progress_.dump(2) + "\n");
}

}  // namespace align
