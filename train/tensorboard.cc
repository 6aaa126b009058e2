#include "train/tensorboard.h"

#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "common/error.h"
#include "train/tensorboard_event.pb.h"

namespace align {
namespace {

uint32_t masked_crc32c(const void* data, size_t size) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, size);
  const uint32_t c = crc.checksum();
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

double now_s() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

std::string tensorboard_tag(const std::string& key) {
  return key.rfind("eval_", 0) == 0 ? "eval/" + key.substr(5) : key;
}

TensorBoardWriter::TensorBoardWriter(const std::string& output_dir) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(output_dir) / "runs";
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw IoError("tensorboard: cannot create " + dir.string() + ": " + error.message());
  char host[256] = "localhost";
  ::gethostname(host, sizeof host - 1);
  path_ = (dir / ("events.out.tfevents." + std::to_string(static_cast<long long>(now_s())) + "." +
                  host + "." + std::to_string(::getpid())))
              .string();
  file_ = std::fopen(path_.c_str(), "wb");
  if (!file_) throw IoError("tensorboard: cannot open " + path_ + ": " + std::strerror(errno));
  tensorboard::Event first;
  first.set_wall_time(now_s());
  first.set_file_version("brain.Event:2");
  append(first.SerializeAsString());
}

TensorBoardWriter::~TensorBoardWriter() {
  if (file_) std::fclose(file_);
}

void TensorBoardWriter::write(const nlohmann::json& record) {
  tensorboard::Event event;
  event.set_wall_time(now_s());
  event.set_step(record.value("step", int64_t{0}));
  tensorboard::Summary* summary = event.mutable_summary();
  for (const auto& [key, value] : record.items()) {
    if (key == "step" || !value.is_number()) continue;
    tensorboard::SummaryValue* v = summary->add_value();
    v->set_tag(tensorboard_tag(key));
    v->set_simple_value(value.get<float>());
  }
  append(event.SerializeAsString());
}

void TensorBoardWriter::append(const std::string& data) {
  const uint64_t length = data.size();
  char header[12];
  std::memcpy(header, &length, 8);  // little-endian, as TFRecord expects (x86, ARM)
  const uint32_t length_crc = masked_crc32c(header, 8);
  std::memcpy(header + 8, &length_crc, 4);
  const uint32_t data_crc = masked_crc32c(data.data(), data.size());
  if (std::fwrite(header, 1, sizeof header, file_) != sizeof header ||
      std::fwrite(data.data(), 1, data.size(), file_) != data.size() ||
      std::fwrite(&data_crc, 1, 4, file_) != 4 || std::fflush(file_) != 0) {
    throw IoError("tensorboard: cannot write " + path_ + ": " + std::strerror(errno));
  }
}

}  // namespace align
