// TensorBoard event files for the trainers (output.report_to: ["jsonl", "tensorboard"]): every
// logged metrics record becomes scalars under the record's keys (TRL's tag names: loss,
// learning_rate, grad_norm, rewards/chosen, ...; eval_* go under eval/, as transformers'
// TensorBoard callback writes them: eval_loss -> eval/loss). Files:
// OUTPUT/runs/events.out.tfevents.<time>. <host>.<pid>, TFRecord framing (length, masked CRC-32C of
// the length, the serialised Event, masked CRC-32C of the data; the CRC from Boost.CRC), Event and
// Summary messages from tensorboard_event.proto (protobuf), the first event "brain.Event:2". Each
// record is flushed when written, so a killed run keeps what it logged; a resumed run starts a new
// file (TensorBoard reads every file of the folder and the later steps win).
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace align {

class TensorBoardWriter {
 public:
  // Creates OUTPUT/runs/ and a new event file in it. Throws IoError naming the path.
  explicit TensorBoardWriter(const std::string& output_dir);
  ~TensorBoardWriter();
  TensorBoardWriter(const TensorBoardWriter&) = delete;
  TensorBoardWriter& operator=(const TensorBoardWriter&) = delete;

  // One event at record["step"] with a scalar for every other numeric field.
  void write(const nlohmann::json& record);
  const std::string& path() const { return path_; }

 private:
  void append(const std::string& event_bytes);
  std::string path_;
  std::FILE* file_ = nullptr;
};

// The TensorBoard tag of a metrics key: "eval_loss" -> "eval/loss", others unchanged.
std::string tensorboard_tag(const std::string& key);

}  // namespace align
