#include "train/rng_state.h"

#include <ATen/Context.h>
#include <torch/cuda.h>
#include <torch/types.h>

#include <cstring>
#include <mutex>

#include "common/error.h"

namespace align {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string encode_state(at::Generator gen) {
  torch::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state().contiguous();
  }
  const auto* data = state.data_ptr<uint8_t>();
  return base64_encode(std::vector<uint8_t>(data, data + state.numel()));
}

void decode_state(at::Generator gen, const nlohmann::json& text, const std::string& what,
                  const std::string& context) {
  if (!text.is_string()) {
    throw InputError(context + ": rng." + what + " must be a base64 string, found " + text.dump());
  }
  const std::vector<uint8_t> bytes =
      base64_decode(text.get<std::string>(), context + ": rng." + what);
  torch::Tensor state = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  if (!bytes.empty()) std::memcpy(state.data_ptr<uint8_t>(), bytes.data(), bytes.size());
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(state);
  } catch (const c10::Error& e) {
    throw InputError(context + ": rng." + what + " is not a valid generator state (" +
                     std::to_string(bytes.size()) + " bytes): " + e.what_without_backtrace());
  }
}

}  // namespace

nlohmann::json capture_rng_state() {
  nlohmann::json state;
  state["cpu"] = encode_state(at::globalContext().defaultGenerator(torch::kCPU));
  nlohmann::json cuda = nlohmann::json::array();
  const int devices =
      torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  for (int d = 0; d < devices; ++d) {
    cuda.push_back(encode_state(at::globalContext().defaultGenerator(
        torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(d)))));
  }
  state["cuda"] = cuda;
  return state;
}

void restore_rng_state(const nlohmann::json& state, const std::string& context) {
  if (!state.is_object() || !state.contains("cpu") || !state.contains("cuda") ||
      !state["cuda"].is_array()) {
    throw InputError(context + ": rng must be an object {\"cpu\": string, \"cuda\": [string...]}");
  }
  decode_state(at::globalContext().defaultGenerator(torch::kCPU), state["cpu"], "cpu", context);
  const int devices =
      torch::cuda::is_available() ? static_cast<int>(torch::cuda::device_count()) : 0;
  const auto& cuda = state["cuda"];
  for (int d = 0; d < devices && d < static_cast<int>(cuda.size()); ++d) {
    decode_state(at::globalContext().defaultGenerator(
                     torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(d))),
                 cuda[d], "cuda[" + std::to_string(d) + "]", context);
  }
}

std::string base64_encode(const std::vector<uint8_t>& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = static_cast<uint32_t>(bytes[i]) << 16;
    if (n > 1) v |= static_cast<uint32_t>(bytes[i + 1]) << 8;
    if (n > 2) v |= bytes[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(n > 1 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(n > 2 ? kAlphabet[v & 63] : '=');
  }
  return out;
}

std::vector<uint8_t> base64_decode(const std::string& text, const std::string& context) {
  if (text.size() % 4 != 0) {
    throw InputError(context + ": base64 length " + std::to_string(text.size()) +
                     " is not a multiple of 4");
  }
  std::vector<uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      const char* at = c ? std::strchr(kAlphabet, c) : nullptr;
      const bool last_group = i + 4 == text.size();
      if (c == '=' && last_group && k >= 2 && (k == 3 || text[i + 3] == '=')) {
        ++pad;
        v <<= 6;
      } else if (at && pad == 0) {
        v = (v << 6) | static_cast<uint32_t>(at - kAlphabet);
      } else {
        throw InputError(context + ": invalid base64 character at offset " + std::to_string(i + k));
      }
    }
    out.push_back(static_cast<uint8_t>(v >> 16));
    if (pad < 2) out.push_back(static_cast<uint8_t>(v >> 8));
    if (pad < 1) out.push_back(static_cast<uint8_t>(v));
  }
  return out;
}

}  // namespace align
