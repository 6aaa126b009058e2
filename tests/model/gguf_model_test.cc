// GGUF on the model side: ggml's block encodings against hand-derived numbers
// (model/ggml_quant.h), llama.cpp's tensor names and the llama Q/K permutation
// (model/gguf_tensors.h), and the phi3/llama metadata (model/gguf_config.h). The same code is
// checked against gguf-py and transformers end to end in tests/smollm2/gguf_cli_test.cc.
#include <c10/util/Half.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "common/error.h"
#include "common/gguf_file.h"
#include "model/ggml_quant.h"
#include "model/gguf_config.h"
#include "model/gguf_tensors.h"
#include "model/init.h"
#include "tests/test_util.h"

namespace align {
namespace {

uint16_t half_bits(float x) {
  return c10::Half(x).x;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(GgufQuant, Q8_0IsGgmlsReferenceByHand) {
  // amax 127: d = 1, 1/d = 1, so q = roundf(x): halves go away from zero (2.5 -> 3, -0.5 -> -1),
  // where round-to-even would give 2 and 0.
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[1] = 2.5f;
  x[2] = -2.5f;
  x[3] = 0.5f;
  x[4] = -0.5f;
  x[5] = 1.49f;
  x[6] = -126.6f;
  const auto bytes = ggml_quantize(torch::tensor(x).view({1, 32}), GgmlType::kQ8_0);
  ASSERT_EQ(bytes.size(), 34u);
  uint16_t d;
  std::memcpy(&d, bytes.data(), 2);
  EXPECT_EQ(d, half_bits(1.0f));
  const auto* q = reinterpret_cast<const int8_t*>(bytes.data() + 2);
  const std::vector<int> expected = {127, 3, -3, 1, -1, 1, -127};
  for (size_t j = 0; j < expected.size(); ++j)
    EXPECT_EQ(q[j], expected[j]) << "value " << j;

  // A general block: d = amax / 127 in fp32, q = roundf(x * (1 / d)), d stored as f16.
  std::vector<float> y(32);
  for (int j = 0; j < 32; ++j)
    y[j] = (static_cast<float>(j) - 16.0f) * 0.37f;
  const auto b = ggml_quantize(torch::tensor(y).view({1, 32}), GgmlType::kQ8_0);
  const float dy = (16.0f * 0.37f) / 127.0f;
  std::memcpy(&d, b.data(), 2);
  EXPECT_EQ(d, half_bits(dy));
  for (int j = 0; j < 32; ++j)
    EXPECT_EQ(static_cast<int8_t>(b[2 + j]), static_cast<int>(std::round(y[j] * (1.0f / dy))));

  // An all-zero block: d = 0 and q = 0.
  const auto z = ggml_quantize(torch::zeros({1, 32}), GgmlType::kQ8_0);
  for (uint8_t byte : z)
    EXPECT_EQ(byte, 0);
}

TEST(GgufQuant, DequantizeDecodesHandBuiltBlocks) {
  // Q4_0: d = 0.5; byte j holds value j in its low nibble and value j + 16 in its high one.
  std::vector<uint8_t> q4_0(18);
  uint16_t d = half_bits(0.5f);
  std::memcpy(q4_0.data(), &d, 2);
  for (int j = 0; j < 16; ++j)
    q4_0[2 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  torch::Tensor v = ggml_dequantize(q4_0.data(), GgmlType::kQ4_0, 1, 32, "q4_0");
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[0][j].item<float>(), (j - 8) * 0.5f);
    EXPECT_EQ(v[0][j + 16].item<float>(), (15 - j - 8) * 0.5f);
  }
  // Q4_1: d = 0.25, m = -1: x = q d + m.
  std::vector<uint8_t> q4_1(20);
  d = half_bits(0.25f);
  const uint16_t m = half_bits(-1.0f);
  std::memcpy(q4_1.data(), &d, 2);
  std::memcpy(q4_1.data() + 2, &m, 2);
  for (int j = 0; j < 16; ++j)
    q4_1[4 + j] = static_cast<uint8_t>((j % 16) | (3 << 4));
  v = ggml_dequantize(q4_1.data(), GgmlType::kQ4_1, 1, 32, "q4_1");
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(v[0][j].item<float>(), j * 0.25f - 1.0f);
    EXPECT_EQ(v[0][j + 16].item<float>(), 3 * 0.25f - 1.0f);
  }
  // Q8_0: d = 2, q = j - 16; two rows of one block each.
  std::vector<uint8_t> q8(68);
  d = half_bits(2.0f);
  for (int r = 0; r < 2; ++r) {
    std::memcpy(q8.data() + 34 * r, &d, 2);
    for (int j = 0; j < 32; ++j)
      q8[34 * r + 2 + j] = static_cast<uint8_t>(static_cast<int8_t>(j - 16 + r));
  }
  v = ggml_dequantize(q8.data(), GgmlType::kQ8_0, 2, 32, "q8_0");
  EXPECT_EQ(v.sizes(), (std::vector<int64_t>{2, 32}));
  EXPECT_EQ(v[1][0].item<float>(), -30.0f);
  EXPECT_EQ(v[0][31].item<float>(), 30.0f);
}

TEST(GgufQuant, RoundTripsStayWithinEachFormatsStep) {
  torch::manual_seed(0);
  const torch::Tensor x = torch::randn({7, 96});
  for (GgmlType type : {GgmlType::kF32, GgmlType::kF16, GgmlType::kBF16}) {
    const auto bytes = ggml_quantize(x, type);
    const torch::Tensor back = ggml_dequantize(bytes.data(), type, 7, 96, "t");
    const torch::ScalarType dtype = type == GgmlType::kF32   ? torch::kFloat
                                    : type == GgmlType::kF16 ? torch::kHalf
                                                             : torch::kBFloat16;
    EXPECT_TRUE(torch::equal(back, x.to(dtype).to(torch::kFloat))) << ggml_type_name(type);
  }
  const auto bytes = ggml_quantize(x, GgmlType::kQ8_0);
  const torch::Tensor back = ggml_dequantize(bytes.data(), GgmlType::kQ8_0, 7, 96, "t");
  const torch::Tensor step = x.view({-1, 32}).abs().amax(1, true) / 127;
  // Half a step, plus the f16 rounding of d times the largest |q| (127).
  const torch::Tensor bound = step * (0.5 + 127 * 0.001);
  EXPECT_TRUE(((back - x).view({-1, 32}).abs() <= bound).all().item<bool>());
}

TEST(GgufQuant, RefusesTypesItCannotReadOrWrite) {
  std::vector<uint8_t> block(144);
  const std::string message =
      error_of([&] { ggml_dequantize(block.data(), GgmlType::kQ4_K, 1, 256, "blk.0.x"); });
  EXPECT_NE(message.find("blk.0.x: type Q4_K cannot be read"), std::string::npos) << message;
  EXPECT_THROW(ggml_quantize(torch::zeros({1, 32}), GgmlType::kQ4_0), InputError);
}

TEST(GgufTensors, NamesAreLlamaCppsThroughTheModelsTensorTable) {
  const ModelConfig c = model_preset("tiny");
  std::vector<std::string> phi3;
  for (const auto& [name, shape] : model_tensor_shapes(c)) {
    const auto parts = gguf_parts(name, c, GgufArch::kPhi3);
    ASSERT_EQ(parts.size(), 1u) << name;
    EXPECT_EQ(parts[0].rows, shape[0]) << name;
    phi3.push_back(parts[0].name);
  }
  EXPECT_EQ(phi3.front(), "token_embd.weight");
  EXPECT_EQ(std::vector<std::string>(phi3.begin() + 1, phi3.begin() + 7),
            (std::vector<std::string>{"blk.0.attn_norm.weight", "blk.0.attn_qkv.weight",
                                      "blk.0.attn_output.weight", "blk.0.ffn_norm.weight",
                                      "blk.0.ffn_up.weight", "blk.0.ffn_down.weight"}));
  EXPECT_EQ(phi3[phi3.size() - 2], "output_norm.weight");
  EXPECT_EQ(phi3.back(), "output.weight");

  const auto qkv = gguf_parts("model.layers.1.self_attn.qkv_proj.weight", c, GgufArch::kLlama);
  ASSERT_EQ(qkv.size(), 3u);
  EXPECT_EQ(qkv[0].name, "blk.1.attn_q.weight");
  EXPECT_EQ(qkv[0].rows, c.q_size);
  EXPECT_EQ(qkv[0].rope_heads, c.num_heads);
  EXPECT_EQ(qkv[1].name, "blk.1.attn_k.weight");
  EXPECT_EQ(qkv[1].rows, c.kv_size);
  EXPECT_EQ(qkv[1].rope_heads, c.num_kv_heads);
  EXPECT_EQ(qkv[2].name, "blk.1.attn_v.weight");
  EXPECT_EQ(qkv[2].rope_heads, 0);
  const auto gate_up = gguf_parts("model.layers.0.mlp.gate_up_proj.weight", c, GgufArch::kLlama);
  ASSERT_EQ(gate_up.size(), 2u);
  EXPECT_EQ(gate_up[0].name, "blk.0.ffn_gate.weight");
  EXPECT_EQ(gate_up[1].name, "blk.0.ffn_up.weight");
  EXPECT_EQ(gate_up[1].rows, c.intermediate_size);
  EXPECT_THROW(gguf_parts("model.layers.0.mlp.up_proj.weight", c, GgufArch::kPhi3), InputError);
}

TEST(GgufTensors, RopePermutationIsLlamaCppsAndUndoes) {
  // One head of D = 4 and one column: rows (0, 1 | 2, 3) interleave to (0, 2, 1, 3).
  const torch::Tensor w = torch::arange(4, torch::kFloat).view({4, 1});
  EXPECT_TRUE(torch::equal(permute_rope_rows(w, 1).view(-1), torch::tensor({0.f, 2.f, 1.f, 3.f})));
  const torch::Tensor big = torch::randn({3 * 8, 5});
  EXPECT_TRUE(torch::equal(unpermute_rope_rows(permute_rope_rows(big, 3), 3), big));
  EXPECT_FALSE(torch::equal(permute_rope_rows(big, 3), big));
}

TEST(GgufTensors, ExportTypesFollowConvertHfToGguf) {
  EXPECT_EQ(gguf_export_type("blk.0.attn_norm.weight", {64}, GgmlType::kQ8_0), GgmlType::kF32);
  EXPECT_EQ(gguf_export_type("output_norm.weight", {64}, GgmlType::kF16), GgmlType::kF32);
  EXPECT_EQ(gguf_export_type("blk.0.ffn_up.weight", {128, 64}, GgmlType::kQ8_0), GgmlType::kQ8_0);
  EXPECT_EQ(gguf_export_type("blk.0.ffn_up.weight", {128, 48}, GgmlType::kQ8_0), GgmlType::kF16);
  EXPECT_EQ(gguf_export_type("token_embd.weight", {10, 48}, GgmlType::kBF16), GgmlType::kBF16);
}

// A GGUF of `config` in `arch` layout from Phi-3 weights `weights` (Hugging Face names): llama
// files get q/k/v and gate/up split and Q/K permuted, as llama.cpp's converter writes them.
// The llama.* keys llama.cpp's converter writes for a Llama of `config`'s sizes.
void set_llama_config(GgufWriter& w, const ModelConfig& config) {
  w.set("general.architecture", GgufValue::string("llama"));
  w.set("llama.context_length", GgufValue::u32(config.max_position_embeddings));
  w.set("llama.embedding_length", GgufValue::u32(config.hidden_size));
  w.set("llama.feed_forward_length", GgufValue::u32(config.intermediate_size));
  w.set("llama.block_count", GgufValue::u32(config.num_layers));
  w.set("llama.attention.head_count", GgufValue::u32(config.num_heads));
  w.set("llama.attention.head_count_kv", GgufValue::u32(config.num_kv_heads));
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::f32(config.rms_norm_eps));
  w.set("llama.rope.freq_base", GgufValue::f32(config.rope_theta));
  w.set("llama.rope.dimension_count", GgufValue::u32(config.head_dim));
}

// `zeros_of` names a GGUF tensor written as zero blocks of that type instead (any ggml type).
void write_model_gguf(const std::string& path, const ModelConfig& config, GgufArch arch,
                      const std::map<std::string, torch::Tensor>& weights, GgmlType type,
                      const std::pair<std::string, GgmlType>& zeros_of = {}) {
  GgufWriter w;
  if (arch == GgufArch::kPhi3) {
    write_phi3_config(config, w);
  } else {
    set_llama_config(w, config);
  }
  for (const auto& [name, shape] : model_tensor_shapes(config)) {
    int64_t row = 0;
    for (const GgufPart& part : gguf_parts(name, config, arch)) {
      torch::Tensor t = weights.at(name);
      if (shape.size() == 2) t = t.narrow(0, row, part.rows);
      if (part.rope_heads > 0) t = permute_rope_rows(t, part.rope_heads);
      row += part.rows;
      GgmlType part_type = gguf_export_type(part.name, t.sizes().vec(), type);
      std::vector<int64_t> ne(t.sizes().rbegin(), t.sizes().rend());
      auto bytes = std::make_shared<std::vector<uint8_t>>();
      if (part.name == zeros_of.first) {
        part_type = zeros_of.second;
        bytes->resize(ggml_nbytes(part_type, ne, part.name));
      } else {
        *bytes = ggml_quantize(t.dim() == 1 ? t.view({1, -1}) : t, part_type);
      }
      GgufTensorSource s{part.name, ne, part_type, nullptr};
      s.write_bytes = [bytes](const std::function<void(const void*, size_t)>& sink) {
        sink(bytes->data(), bytes->size());
      };
      w.add_tensor(std::move(s));
    }
  }
  w.write(path);
}

std::map<std::string, torch::Tensor> random_weights(const ModelConfig& config) {
  std::map<std::string, torch::Tensor> out;
  for (const TensorToSave& t : random_init_tensors(config, 7, torch::kFloat))
    out[t.name] = t.produce().to(torch::kFloat);
  return out;
}

TEST(GgufTensors, LlamaAndPhi3FilesReadBackAsTheSamePhi3Weights) {
  ModelConfig config = model_preset("tiny");
  const auto weights = random_weights(config);
  testing::TempDir dir;
  for (GgufArch arch : {GgufArch::kPhi3, GgufArch::kLlama}) {
    const std::string path = dir.file(std::string(gguf_arch_name(arch)) + ".gguf");
    write_model_gguf(path, config, arch, weights, GgmlType::kF32);
    const auto file = GgufFile::open(path);
    const GgufModelConfig read = read_gguf_config(*file);
    EXPECT_EQ(read.arch, arch);
    check_gguf_tensors(*file, read.config, arch);
    for (const auto& [name, shape] : model_tensor_shapes(config)) {
      const torch::Tensor w = read_gguf_weight(*file, name, shape, read.config, arch);
      EXPECT_TRUE(torch::equal(w, weights.at(name))) << gguf_arch_name(arch) << " " << name;
    }
  }
  // Q8_0 parts: each part is its own dequantised encoding, unpermuted after decoding.
  const std::string path = dir.file("llama_q8.gguf");
  write_model_gguf(path, config, GgufArch::kLlama, weights, GgmlType::kQ8_0);
  const auto file = GgufFile::open(path);
  const std::string qkv = "model.layers.0.self_attn.qkv_proj.weight";
  const torch::Tensor w = read_gguf_weight(*file, qkv, {config.qkv_rows(), config.hidden_size},
                                           config, GgufArch::kLlama);
  const torch::Tensor k = weights.at(qkv).narrow(0, config.q_size, config.kv_size);
  const auto k_bytes = ggml_quantize(permute_rope_rows(k, config.num_kv_heads), GgmlType::kQ8_0);
  const torch::Tensor k_back = unpermute_rope_rows(
      ggml_dequantize(k_bytes.data(), GgmlType::kQ8_0, config.kv_size, config.hidden_size, "k"),
      config.num_kv_heads);
  EXPECT_TRUE(torch::equal(w.narrow(0, config.q_size, config.kv_size), k_back));
  EXPECT_LT((w - weights.at(qkv)).abs().max().item<float>(), 0.01f);
}

TEST(GgufTensors, CheckListsMissingUnexpectedWrongShapesAndUnreadableTypes) {
  ModelConfig config = model_preset("tiny");
  config.num_layers = 1;
  validate_config(config, "test");
  auto weights = random_weights(config);
  testing::TempDir dir;
  write_model_gguf(dir.file("ok.gguf"), config, GgufArch::kPhi3, weights, GgmlType::kF32);
  ModelConfig other = config;
  other.intermediate_size = 96;  // ffn_up and ffn_down of another width
  other.tie_word_embeddings = true;
  validate_config(other, "test");
  const std::string message = error_of(
      [&] { check_gguf_tensors(*GgufFile::open(dir.file("ok.gguf")), other, GgufArch::kPhi3); });
  EXPECT_NE(message.find("wrong shape blk.0.ffn_up.weight: expected [192, 64], found [256, 64]"),
            std::string::npos)
      << message;
  EXPECT_NE(message.find("wrong shape blk.0.ffn_down.weight"), std::string::npos) << message;
  EXPECT_NE(message.find("unexpected output.weight [512, 64]"), std::string::npos) << message;
  const std::string llama = error_of(
      [&] { check_gguf_tensors(*GgufFile::open(dir.file("ok.gguf")), config, GgufArch::kLlama); });
  EXPECT_NE(llama.find("missing blk.0.attn_q.weight [64, 64]"), std::string::npos) << llama;
  EXPECT_NE(llama.find("unexpected blk.0.attn_qkv.weight"), std::string::npos) << llama;

  // A K-quant (rows of 256) is laid out fine but cannot be dequantised.
  ModelConfig wide = config;
  wide.hidden_size = 256;
  validate_config(wide, "test");
  write_model_gguf(dir.file("q4k.gguf"), wide, GgufArch::kPhi3, random_weights(wide),
                   GgmlType::kF32, {"blk.0.attn_output.weight", GgmlType::kQ4_K});
  const std::string q4k = error_of(
      [&] { check_gguf_tensors(*GgufFile::open(dir.file("q4k.gguf")), wide, GgufArch::kPhi3); });
  EXPECT_NE(q4k.find("unreadable type blk.0.attn_output.weight: Q4_K (align dequantises F32, F16, "
                     "BF16, Q8_0, Q4_0 and Q4_1)"),
            std::string::npos)
      << q4k;
}

TEST(GgufConfig, Phi3MetadataRoundTrips) {
  ModelConfig tiny = model_preset("tiny");
  // A longrope, partial-rotary, tied config (Phi-4-mini's features at a small size).
  ModelConfig mini = tiny;
  mini.num_heads = 2;
  mini.num_kv_heads = 1;
  mini.partial_rotary_factor = 0.75;
  mini.tie_word_embeddings = true;
  mini.rope_type = RopeType::kLongrope;
  mini.max_position_embeddings = 8192;
  mini.original_max_position_embeddings = 1024;
  for (int i = 0; i < 12; ++i) {
    mini.short_factor.push_back(1.0 + 0.125 * i);
    mini.long_factor.push_back(2.0 + 0.5 * i);
  }
  validate_config(mini, "mini");
  ASSERT_EQ(mini.rotary_dim, 24);
  testing::TempDir dir;
  for (const ModelConfig& c : {tiny, mini}) {
    write_model_gguf(dir.file("c.gguf"), c, GgufArch::kPhi3, random_weights(c), GgmlType::kF32);
    const auto file = GgufFile::open(dir.file("c.gguf"));
    check_gguf_tensors(*file, c, GgufArch::kPhi3, phi3_extra_tensors(c));
    const ModelConfig r = read_gguf_config(*file).config;
    EXPECT_EQ(r.vocab_size, c.vocab_size);
    EXPECT_EQ(r.hidden_size, c.hidden_size);
    EXPECT_EQ(r.intermediate_size, c.intermediate_size);
    EXPECT_EQ(r.num_layers, c.num_layers);
    EXPECT_EQ(r.num_heads, c.num_heads);
    EXPECT_EQ(r.num_kv_heads, c.num_kv_heads);
    EXPECT_EQ(r.max_position_embeddings, c.max_position_embeddings);
    EXPECT_EQ(r.rotary_dim, c.rotary_dim);
    EXPECT_EQ(r.rope_theta, c.rope_theta);
    EXPECT_EQ(r.rms_norm_eps, static_cast<double>(static_cast<float>(c.rms_norm_eps)));
    EXPECT_EQ(r.tie_word_embeddings, c.tie_word_embeddings);
    EXPECT_EQ(r.rope_type, c.rope_type);
    EXPECT_EQ(r.short_factor, c.short_factor);
    EXPECT_EQ(r.long_factor, c.long_factor);
    EXPECT_EQ(r.original_max_position_embeddings, c.rope_type == RopeType::kLongrope
                                                      ? c.original_max_position_embeddings
                                                      : c.max_position_embeddings);
    EXPECT_NEAR(r.rope_attention_scaling, c.rope_attention_scaling, 1e-6);
    EXPECT_FALSE(r.attention_factor.has_value());  // the derived one, not a stored override
  }
}

TEST(GgufConfig, RefusesWhatLlamaCppsPhi3OrAPhi3CannotRun) {
  ModelConfig windowed = model_preset("tiny");
  windowed.sliding_window = 2047;
  std::string message = error_of([&] { check_llama_cpp_phi3(windowed, "m/config.json"); });
  EXPECT_NE(message.find("m/config.json: field 'sliding_window' is 2047"), std::string::npos)
      << message;
  EXPECT_EQ(error_of([&] { check_llama_cpp_phi3(model_preset("tiny"), "x"); }), "");

  const ModelConfig tiny = model_preset("tiny");
  testing::TempDir dir;
  // A valid llama file, then one key changed at a time.
  struct Case {
    std::string key;
    GgufValue value;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"general.architecture", GgufValue::string("gemma"),
       "'general.architecture' is \"gemma\"; align imports the llama and phi3"},
      {"llama.expert_count", GgufValue::u32(8), "'llama.expert_count' is set"},
      {"llama.rope.scaling.type", GgufValue::string("linear"),
       "'llama.rope.scaling.type' is \"linear\""},
      {"llama.attention.key_length", GgufValue::u32(32), "'llama.attention.key_length' is 32"},
      {"llama.rope.dimension_count", GgufValue::u32(8), "'llama.rope.dimension_count' is 8"},
      {"llama.vocab_size", GgufValue::u32(100), "'llama.vocab_size' is 100"},
      {"llama.block_count", GgufValue::string("2"),
       "metadata 'llama.block_count': expected an integer, found string"},
  };
  for (const Case& c : cases) {
    GgufWriter w;
    set_llama_config(w, tiny);
    w.set(c.key, c.value);
    GgufTensorSource embed{
        "token_embd.weight", {tiny.hidden_size, tiny.vocab_size}, GgmlType::kF16, nullptr};
    const size_t bytes = 2 * tiny.hidden_size * tiny.vocab_size;
    embed.write_bytes = [bytes](const std::function<void(const void*, size_t)>& sink) {
      std::vector<uint8_t> zeros(bytes);
      sink(zeros.data(), zeros.size());
    };
    w.add_tensor(std::move(embed));
    w.write(dir.file("bad.gguf"));
    message = error_of([&] { read_gguf_config(*GgufFile::open(dir.file("bad.gguf"))); });
    EXPECT_NE(message.find(c.message), std::string::npos)
        << c.key << ": expected \"" << c.message << "\", got \"" << message << "\"";
  }
}

}  // namespace
}  // namespace align
