// Reading speed of a dataset through data/dataset_records.h, the path every loader takes: each
// record becomes the JSON object the loaders read (Parquet streamed a row group at a time), and
// the bench touches every string in it. Prints records, text bytes, file bytes, seconds, MB/s of
// text and the peak resident memory, as one table row; bench/dataset_read_compare.sh runs it
// beside the `datasets` package on the same files.
//
//   build/bin/dataset_read_bench SOURCE [--passes N]
//
// SOURCE: anything data.train takes (a Parquet or JSONL file, a folder, ORG/NAME[@REV][:SPLIT]).
#include <sys/resource.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "common/error.h"
#include "data/dataset_files.h"
#include "data/dataset_records.h"

namespace {

// Bytes of every string in a record (keys excluded), so no value goes unread.
int64_t text_bytes(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::string:
      return static_cast<int64_t>(value.get_ref<const std::string&>().size());
    case nlohmann::json::value_t::array:
    case nlohmann::json::value_t::object: {
      int64_t n = 0;
      for (const nlohmann::json& item : value)
        n += text_bytes(item);
      return n;
    }
    default:
      return 0;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string source;
  int passes = 1;
  CLI::App app("Records per second through data/dataset_records.h (see the top of the file)");
  app.add_option("source", source, "Anything data.train takes")->required();
  app.add_option("--passes", passes, "Times to read it")->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    int64_t file_bytes = 0;
    for (const std::string& f : align::resolve_dataset_files(source, "source").files)
      file_bytes += static_cast<int64_t>(std::filesystem::file_size(f));
    std::printf(
        "| side | pass | records | text MB | file MB | seconds | text MB/s | peak RSS MB |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    for (int pass = 1; pass <= passes; ++pass) {
      int64_t records = 0, bytes = 0;
      const auto start = std::chrono::steady_clock::now();
      align::for_each_record(source, "source",
                             [&](const nlohmann::json& record, const align::RecordLocation&) {
                               ++records;
                               bytes += text_bytes(record);
                             });
      const double s =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rusage usage{};
      getrusage(RUSAGE_SELF, &usage);
      std::printf("| align for_each_record | %d | %lld | %.1f | %.1f | %.2f | %.1f | %.0f |\n",
                  pass, static_cast<long long>(records), bytes / 1e6, file_bytes / 1e6, s,
                  bytes / 1e6 / s, usage.ru_maxrss / 1024.0);
    }
  } catch (const align::Error& e) {
    std::fprintf(stderr, "dataset_read_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
