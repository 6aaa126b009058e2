// LoRA on the Phi3 model: PEFT initialisation, the adapted forward against a reference built
// from merged weights with plain torch ops, merging, disabling, dropout, PEFT adapter files and
// merged model directories.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>

#include "common/atomic_file.h"
#include "common/error.h"
#include "model/checkpoint.h"
#include "model/init.h"
#include "model/lora.h"
#include "model/peft_io.h"
#include "tests/model/lora_test_util.h"

namespace align {
namespace {

using testing::batch_logits;
using testing::golden_model;
using testing::max_abs_diff;
using testing::small_lora;
using testing::two_rows;

// The model with W' = W + scale * B A for every adapter, computed here in fp64 from the
// adapter tensors, with the adapters left out: an independent reference for the adapted forward.
Phi3Model merged_reference(const Phi3Model& model) {
  const LoraOptions& o = model.lora_options();
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, t] : model.named_weights())
    tensors[name] = t.detach();
  for (int64_t l = 0; l < model.config().num_layers; ++l) {
    const LayerWeights& w = model.weights().layers[static_cast<size_t>(l)];
    for (const auto& module : o.target_modules) {
      const LoraAdapter& a = w.lora.at(module);
      const std::string name = lora_module_path(l, module) + ".weight";
      auto delta = torch::mm(a.b.detach().to(torch::kDouble), a.a.detach().to(torch::kDouble));
      tensors[name] = (tensors[name].to(torch::kDouble) + o.alpha / o.rank * delta)
                          .to(tensors[name].scalar_type());
    }
  }
  return Phi3Model(model.config(), assemble_weights(model.config(), [&](const std::string& n) {
                     return tensors.at(n);
                   }));
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

#define EXPECT_MENTIONS(msg, text) \
  EXPECT_NE((msg).find(text), std::string::npos) << "'" << (text) << "' not in: " << (msg)

TEST(Lora, OptionsAreValidated) {
  auto bad = [](auto change) {
    LoraOptions o = small_lora();
    change(o);
    return error_of([&] { validate_lora_options(o, "run.json"); });
  };
  EXPECT_EQ(bad([](LoraOptions&) {}), "<no error>");
  EXPECT_MENTIONS(bad([](LoraOptions& o) { o.rank = 0; }), "lora.rank");
  EXPECT_MENTIONS(bad([](LoraOptions& o) { o.alpha = -1; }), "lora.alpha");
  EXPECT_MENTIONS(bad([](LoraOptions& o) { o.dropout = 1.0; }), "lora.dropout");
  EXPECT_MENTIONS(bad([](LoraOptions& o) { o.target_modules = {"q_proj"}; }), "'q_proj'");
  EXPECT_MENTIONS(bad([](LoraOptions& o) { o.target_modules = {"o_proj", "o_proj"}; }), "twice");
  EXPECT_MENTIONS(bad([](LoraOptions& o) { o.target_modules = {}; }), "run.json");
  Phi3Model model = golden_model("phi4_tiny");
  LoraOptions o = small_lora();
  o.rank = -2;
  EXPECT_THROW(model.attach_lora(o, 1), InputError);
  EXPECT_FALSE(model.has_lora());
}

TEST(Lora, InitFollowsPeft) {
  // kaiming_uniform_(a=sqrt(5)) on A [r, in]: U(-1/sqrt(in), 1/sqrt(in)); B = 0.
  Phi3Model model = golden_model("phi4_tiny");
  LoraOptions o = small_lora();
  o.rank = 16;
  model.attach_lora(o, 7);
  const auto params = model.lora_parameters();
  ASSERT_EQ(params.size(), 2u * 4 * 2);  // layers x modules x {A, B}
  std::set<std::string> seen_values;
  for (const auto& [name, t] : params) {
    EXPECT_EQ(t.scalar_type(), torch::kFloat) << name;
    EXPECT_TRUE(t.requires_grad()) << name;
    if (name.find("lora_B") != std::string::npos) {
      EXPECT_EQ(t.abs().max().item<double>(), 0.0) << name;
      continue;
    }
    const double bound = 1.0 / std::sqrt(static_cast<double>(t.size(1)));
    const double n = static_cast<double>(t.numel());
    EXPECT_LE(t.abs().max().item<double>(), bound) << name;
    EXPECT_GT(t.abs().max().item<double>(), 0.95 * bound) << name;
    // Uniform(-b, b): mean 0, std b / sqrt(3).
    EXPECT_NEAR(t.mean().item<double>(), 0.0, 4 * bound / std::sqrt(3 * n)) << name;
    EXPECT_NEAR(t.std().item<double>(), bound / std::sqrt(3.0), 0.1 * bound) << name;
    seen_values.insert(std::to_string(t[0][0].item<double>()));
  }
  EXPECT_EQ(seen_values.size(), 8u);  // every A draws its own values

  // Deterministic per seed, per tensor name (so independent of which modules are targeted).
  Phi3Model again = golden_model("phi4_tiny");
  again.attach_lora(o, 7);
  Phi3Model other_seed = golden_model("phi4_tiny");
  other_seed.attach_lora(o, 8);
  Phi3Model only_o = golden_model("phi4_tiny");
  LoraOptions o_only = o;
  o_only.target_modules = {"o_proj"};
  only_o.attach_lora(o_only, 7);
  const auto p2 = again.lora_parameters(), p3 = other_seed.lora_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    EXPECT_TRUE(torch::equal(params[i].second, p2[i].second)) << params[i].first;
    if (i % 2 == 0) {
      EXPECT_FALSE(torch::equal(params[i].second, p3[i].second)) << params[i].first;
    }
  }
  EXPECT_TRUE(
      torch::equal(only_o.weights().layers[1].lora.o.a, model.weights().layers[1].lora.o.a));
  EXPECT_FALSE(only_o.weights().layers[1].lora.qkv.defined());
}

TEST(Lora, ParametersCarryPeftNamesAndShapes) {
  Phi3Model model = golden_model("phi4_tiny");  // C 64, H*D 64, qkv rows 128, 2I 256, I 128
  model.attach_lora(small_lora(), 1);
  const auto params = model.lora_parameters();
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected_first = {
      {"base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", {4, 64}},
      {"base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight", {128, 4}},
      {"base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight", {4, 64}},
      {"base_model.model.model.layers.0.self_attn.o_proj.lora_B.weight", {64, 4}},
      {"base_model.model.model.layers.0.mlp.gate_up_proj.lora_A.weight", {4, 64}},
      {"base_model.model.model.layers.0.mlp.gate_up_proj.lora_B.weight", {256, 4}},
      {"base_model.model.model.layers.0.mlp.down_proj.lora_A.weight", {4, 128}},
      {"base_model.model.model.layers.0.mlp.down_proj.lora_B.weight", {64, 4}},
  };
  ASSERT_EQ(params.size(), 16u);
  for (size_t i = 0; i < expected_first.size(); ++i) {
    EXPECT_EQ(params[i].first, expected_first[i].first);
    EXPECT_EQ(params[i].second.sizes().vec(), expected_first[i].second) << params[i].first;
  }
  EXPECT_EQ(params.back().first, "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  // The model's own tensors: writing through them changes the model.
  EXPECT_TRUE(params[1].second.is_same(model.weights().layers[0].lora.qkv.b));
  EXPECT_TRUE(golden_model("phi4_tiny").lora_parameters().empty());
}

TEST(Lora, ZeroBLeavesTheModelUnchanged) {
  for (const char* name : {"phi4_tiny", "mini_tiny"}) {
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      torch::NoGradGuard no_grad;
      Phi3Model model = golden_model(name, dtype);
      const auto tokens = two_rows(21, model.config().vocab_size, 3);
      const auto base = batch_logits(model, tokens);
      model.attach_lora(small_lora(), 5);
      EXPECT_TRUE(torch::equal(batch_logits(model, tokens), base)) << name << " " << dtype;
    }
  }
}

// fp32 agreement of two summation orders, relative to the largest logit. The logits reach ~11
// and fp32 itself is off from an fp64 forward by up to 2.4e-5 (2e-6 relative) on these models;
// measured difference between the two orders: 3.5e-5 (mini_tiny), below 1e-5 (phi4_tiny). The
// adapters move the logits by over 1e-2 (asserted), so a wrong scale, transpose or missing
// adapter is far outside.
double fp32_tolerance(const torch::Tensor& logits) {
  return 1e-5 * std::max(1.0, logits.abs().max().item<double>());
}

TEST(Lora, AdaptedForwardEqualsMergedWeightsReference) {
  // The reference computes x (W + s B A)^T, the model x W^T + s (x A^T) B^T.
  for (const char* name : {"phi4_tiny", "mini_tiny"}) {
    for (const auto& targets : std::vector<std::vector<std::string>>{
             {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}, {"o_proj", "gate_up_proj"}}) {
      torch::NoGradGuard no_grad;
      Phi3Model model = golden_model(name);
      model.attach_lora(small_lora(targets), 11);
      testing::randomize_lora_b(model, 12);
      const auto tokens = two_rows(40, model.config().vocab_size, 4);  // mini: longrope switch
      const auto got = batch_logits(model, tokens);
      const auto want = batch_logits(merged_reference(model), tokens);
      const auto base = batch_logits(golden_model(name), tokens);
      EXPECT_LT(max_abs_diff(got, want), fp32_tolerance(want)) << name << " " << targets.size();
      EXPECT_GT(max_abs_diff(got, base), 1e-2) << name << ": the adapters must matter";
    }
  }
}

TEST(Lora, MergeEqualsTheAdaptedForward) {
  torch::NoGradGuard no_grad;
  Phi3Model model = golden_model("mini_tiny");
  model.attach_lora(small_lora(), 2);
  testing::randomize_lora_b(model, 3);
  const auto tokens = two_rows(25, model.config().vocab_size, 5);
  const auto adapted = batch_logits(model, tokens);
  const torch::Tensor w = model.weights().layers[1].gate_up.dense();
  const LoraAdapter a = model.weights().layers[1].lora.gate_up;
  model.merge_lora();
  EXPECT_FALSE(model.has_lora());
  EXPECT_TRUE(model.lora_parameters().empty());
  EXPECT_LT(max_abs_diff(batch_logits(model, tokens), adapted), fp32_tolerance(adapted));
  auto want =
      w.to(torch::kDouble) + 2.0 * torch::mm(a.b.to(torch::kDouble), a.a.to(torch::kDouble));
  EXPECT_LT(max_abs_diff(model.weights().layers[1].gate_up.dense(), want), 1e-6);

  // bf16: the sum is formed in fp32 and rounded once (PEFT's merge on a bf16 weight).
  Phi3Model bf = golden_model("phi4_tiny", torch::kBFloat16);
  bf.attach_lora(small_lora(), 2);
  testing::randomize_lora_b(bf, 3);
  const torch::Tensor wb = bf.weights().layers[0].down.dense();
  const LoraAdapter ab = bf.weights().layers[0].lora.down;
  bf.merge_lora();
  auto want_bf = (wb.to(torch::kFloat) + torch::mm(ab.b, ab.a) * 2.0).to(torch::kBFloat16);
  EXPECT_EQ(bf.weights().layers[0].down.dense().scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(bf.weights().layers[0].down.dense(), want_bf));
}

TEST(Lora, DisabledAdaptersGiveTheBaseModel) {
  torch::NoGradGuard no_grad;
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    Phi3Model model = golden_model("phi4_tiny", dtype);
    const auto tokens = two_rows(17, model.config().vocab_size, 6);
    const auto base = batch_logits(model, tokens);
    model.attach_lora(small_lora(), 4);
    testing::randomize_lora_b(model, 5);
    const auto adapted = batch_logits(model, tokens);
    model.set_lora_enabled(false);
    EXPECT_TRUE(torch::equal(batch_logits(model, tokens), base));
    model.set_lora_enabled(true);
    EXPECT_TRUE(torch::equal(batch_logits(model, tokens), adapted));
    EXPECT_FALSE(torch::equal(adapted, base));
  }
}

TEST(Lora, Bf16BaseAddsTheFp32AdapterBranchBeforeRounding) {
  // PEFT, bf16 base with fp32 adapters: result = base(x) (bf16); the adapter branch runs on
  // x.to(fp32); result + branch promotes to fp32 and is cast back to bf16 once.
  torch::manual_seed(0);
  auto x = torch::randn({3, 5, 64}).to(torch::kBFloat16);
  auto w = (torch::randn({48, 64}) * 0.1).to(torch::kBFloat16);
  LoraAdapter a{torch::randn({4, 64}) * 0.1, torch::randn({48, 4}) * 0.1};
  LoraApply apply{true, 2.0, 0.0, false};
  auto got = lora_linear(x, w, a, apply);
  EXPECT_EQ(got.scalar_type(), torch::kBFloat16);
  auto base = torch::matmul(x.to(torch::kFloat), w.to(torch::kFloat).t())
                  .to(torch::kBFloat16)
                  .to(torch::kDouble);
  auto branch = torch::matmul(torch::matmul(x.to(torch::kDouble), a.a.to(torch::kDouble).t()),
                              a.b.to(torch::kDouble).t()) *
                2.0;
  auto want = (base + branch).to(torch::kBFloat16);
  // At most one bf16 rounding step apart (BLAS summation order), far below a branch in bf16.
  auto diff = (got.to(torch::kDouble) - want.to(torch::kDouble)).abs();
  auto ulp = want.to(torch::kDouble).abs() * (1.0 / 128) + 1e-6;
  EXPECT_TRUE((diff <= ulp).all().item<bool>()) << (diff - ulp).max().item<double>();
  // Without the adapter (or disabled) it is the plain projection, bit for bit.
  EXPECT_TRUE(torch::equal(lora_linear(x, w, LoraAdapter{}, apply), torch::linear(x, w)));
  apply.enabled = false;
  EXPECT_TRUE(torch::equal(lora_linear(x, w, a, apply), torch::linear(x, w)));
}

TEST(Lora, DropoutActsOnlyInTraining) {
  torch::NoGradGuard no_grad;
  Phi3Model model = golden_model("phi4_tiny");
  LoraOptions o = small_lora();
  o.dropout = 0.5;
  model.attach_lora(o, 1);
  testing::randomize_lora_b(model, 2);
  const auto tokens = two_rows(9, model.config().vocab_size, 7);
  Phi3Model no_dropout = model;  // shares the tensors
  LoraOptions o0 = o;
  o0.dropout = 0.0;
  std::vector<LayerLora> same;
  for (const auto& l : model.weights().layers)
    same.push_back(l.lora);
  no_dropout.set_lora(o0, same);
  const auto eval = batch_logits(model, tokens);
  EXPECT_TRUE(torch::equal(eval, batch_logits(no_dropout, tokens)));
  model.set_training(true);
  torch::manual_seed(3);
  const auto train1 = batch_logits(model, tokens);
  torch::manual_seed(3);
  const auto train2 = batch_logits(model, tokens);
  EXPECT_TRUE(torch::equal(train1, train2));  // seeded
  EXPECT_GT(max_abs_diff(train1, eval), 1e-3);
  no_dropout.set_training(true);
  EXPECT_TRUE(torch::equal(batch_logits(no_dropout, tokens), eval));
}

TEST(Lora, ToMovesTheBaseAndKeepsAdaptersFp32) {
  torch::NoGradGuard no_grad;
  Phi3Model model = golden_model("phi4_tiny", torch::kBFloat16);
  model.attach_lora(small_lora(), 1);
  testing::randomize_lora_b(model, 2);
  model.set_lora_enabled(false);
  const Phi3Model fp32 = model.to(torch::kFloat, torch::kCPU);
  ASSERT_TRUE(fp32.has_lora());
  EXPECT_FALSE(fp32.lora_enabled());
  const auto a = model.lora_parameters(), b = fp32.lora_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].second.scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  }
}

TEST(Lora, MakeWeightsOwnedCopiesMappedTensors) {
  // bf16 file loaded as bf16: Checkpoint::get returns views of the file mapping.
  Phi3Model model = golden_model("phi4_tiny", torch::kBFloat16);
  auto before = model.named_weights();
  int mapped = 0;
  for (const auto& [name, t] : before)
    mapped += t.storage().resizable() ? 0 : 1;
  EXPECT_GT(mapped, 0);
  model.mutable_weights().layers[0].o.mutable_dense().requires_grad_(true);
  model.make_weights_owned();
  const auto after = model.named_weights();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i) {
    EXPECT_TRUE(after[i].second.storage().resizable()) << after[i].first;
    EXPECT_TRUE(torch::equal(after[i].second, before[i].second)) << after[i].first;
  }
  EXPECT_TRUE(model.weights().layers[0].o.dense().requires_grad());
  // Owned tensors are left alone; a tied head stays the embedding.
  Phi3Model mini = golden_model("mini_tiny", torch::kFloat);  // converted: already owned
  auto qkv = mini.weights().layers[0].qkv.dense();
  mini.make_weights_owned();
  EXPECT_TRUE(mini.weights().layers[0].qkv.dense().is_same(qkv));
  EXPECT_TRUE(mini.weights().lm_head.is_same(mini.weights().embed));
  Phi3Model mini_bf = golden_model("mini_tiny", torch::kBFloat16);
  mini_bf.make_weights_owned();
  EXPECT_TRUE(mini_bf.weights().lm_head.is_same(mini_bf.weights().embed));
}

// --- PEFT adapter files.

std::string adapter_file(const std::string& dir) {
  return dir + "/adapter_model.safetensors";
}

std::vector<std::pair<std::string, torch::Tensor>> read_tensors(const std::string& path) {
  const Checkpoint file = Checkpoint::open(path);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& name : file.names())
    out.emplace_back(name, file.get(name, torch::kFloat, torch::kCPU).clone());
  return out;
}

TEST(PeftIo, SaveAndLoadRoundTrip) {
  testing::TempDir dir;
  Phi3Model model = golden_model("mini_tiny");
  LoraOptions o = small_lora({"qkv_proj", "down_proj"});
  o.dropout = 0.1;
  o.alpha = 12.5;
  model.attach_lora(o, 9);
  testing::randomize_lora_b(model, 10);
  save_peft_adapter(dir.path(), model, "microsoft/Phi-4-mini-instruct");

  const auto config = nlohmann::json::parse(read_file(dir.file("adapter_config.json")));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["task_type"], "CAUSAL_LM");
  EXPECT_EQ(config["r"], 4);
  EXPECT_EQ(config["lora_alpha"], 12.5);
  EXPECT_EQ(config["lora_dropout"], 0.1);
  EXPECT_EQ(config["target_modules"], nlohmann::json({"qkv_proj", "down_proj"}));
  EXPECT_EQ(config["bias"], "none");
  EXPECT_EQ(config["fan_in_fan_out"], false);
  EXPECT_EQ(config["use_rslora"], false);
  EXPECT_EQ(config["use_dora"], false);
  EXPECT_EQ(config["base_model_name_or_path"], "microsoft/Phi-4-mini-instruct");

  auto file = SafetensorsFile::open(adapter_file(dir.path()));
  EXPECT_EQ(file->metadata().at("format"), "pt");
  std::set<std::string> names;
  for (const auto& [name, view] : file->tensors()) {
    names.insert(name);
    EXPECT_EQ(view.dtype, Dtype::F32) << name;
  }
  EXPECT_EQ(names, (std::set<std::string>{
                       "base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight",
                       "base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight",
                       "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight",
                       "base_model.model.model.layers.0.mlp.down_proj.lora_B.weight",
                       "base_model.model.model.layers.1.self_attn.qkv_proj.lora_A.weight",
                       "base_model.model.model.layers.1.self_attn.qkv_proj.lora_B.weight",
                       "base_model.model.model.layers.1.mlp.down_proj.lora_A.weight",
                       "base_model.model.model.layers.1.mlp.down_proj.lora_B.weight",
                   }));

  Phi3Model loaded = golden_model("mini_tiny");
  loaded.attach_lora(small_lora(), 99);  // replaced by the load
  const LoraOptions got = load_peft_adapter(dir.path(), loaded);
  EXPECT_TRUE(got == o);
  EXPECT_TRUE(loaded.lora_options() == o);
  const auto a = model.lora_parameters(), b = loaded.lora_parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].first, b[i].first);
    EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    EXPECT_TRUE(b[i].second.requires_grad());
  }
  EXPECT_FALSE(loaded.weights().layers[0].lora.o.defined());
  torch::NoGradGuard no_grad;
  const auto tokens = two_rows(13, 320, 8);
  EXPECT_TRUE(torch::equal(batch_logits(loaded, tokens), batch_logits(model, tokens)));

  // A bf16 model reads the same adapters, still fp32.
  Phi3Model bf = golden_model("mini_tiny", torch::kBFloat16);
  load_peft_adapter(dir.path(), bf);
  EXPECT_EQ(bf.lora_parameters()[0].second.scalar_type(), torch::kFloat);
}

TEST(PeftIo, ReadsPeftWrittenConfigs) {
  testing::TempDir dir;
  // As PEFT 0.21 writes it: target_modules in set order, later fields at their defaults.
  nlohmann::json j = {{"peft_type", "LORA"},
                      {"task_type", "CAUSAL_LM"},
                      {"r", 8},
                      {"lora_alpha", 16},
                      {"lora_dropout", 0.05},
                      {"bias", "none"},
                      {"use_dora", false},
                      {"use_rslora", false},
                      {"rank_pattern", {}},
                      {"alpha_pattern", {}},
                      {"layers_to_transform", nullptr},
                      {"modules_to_save", nullptr},
                      {"lora_bias", false},
                      {"exclude_modules", nullptr},
                      {"target_modules", {"gate_up_proj", "qkv_proj", "down_proj", "o_proj"}},
                      {"peft_version", "0.21.2"},
                      {"loftq_config", nlohmann::json::object()}};
  testing::write_text(dir.file("adapter_config.json"), j.dump());
  LoraOptions o = read_peft_config(dir.path());
  EXPECT_EQ(o.rank, 8);
  EXPECT_EQ(o.alpha, 16);
  EXPECT_EQ(o.dropout, 0.05);
  EXPECT_EQ(o.target_modules, lora_module_names());
  j["target_modules"] = "all-linear";
  testing::write_text(dir.file("adapter_config.json"), j.dump());
  EXPECT_EQ(read_peft_config(dir.file("adapter_config.json")).target_modules, lora_module_names());

  auto rejected = [&](const char* key, const nlohmann::json& value) {
    nlohmann::json bad = j;
    bad[key] = value;
    testing::write_text(dir.file("adapter_config.json"), bad.dump());
    return error_of([&] { read_peft_config(dir.path()); });
  };
  for (auto [key, value] :
       std::vector<std::pair<const char*, nlohmann::json>>{{"use_dora", true},
                                                           {"use_rslora", true},
                                                           {"bias", "all"},
                                                           {"fan_in_fan_out", true},
                                                           {"rank_pattern", {{"o_proj", 4}}},
                                                           {"layers_to_transform", {0}},
                                                           {"modules_to_save", {"lm_head"}},
                                                           {"peft_type", "IA3"},
                                                           {"target_modules", ".*proj"},
                                                           {"target_modules", {"q_proj", "v_proj"}},
                                                           {"r", 0},
                                                           {"r", "8"},
                                                           {"lora_dropout", 1.5}}) {
    const std::string msg = rejected(key, value);
    EXPECT_MENTIONS(msg, "adapter_config.json");
    EXPECT_MENTIONS(msg, key == std::string("r") ? "r" : key);
  }
  EXPECT_MENTIONS(error_of([&] { read_peft_config(dir.file("nope")); }), "nope");
}

// Saves a fresh rank-4 adapter of phi4_tiny into `dir` and returns the model.
Phi3Model saved_adapter(const testing::TempDir& dir) {
  Phi3Model model = golden_model("phi4_tiny");
  model.attach_lora(small_lora(), 3);
  testing::randomize_lora_b(model, 4);
  save_peft_adapter(dir.path(), model, testing::golden_model_dir("phi4_tiny"));
  return model;
}

TEST(PeftIo, LoadErrorsNameTheFileAndTheTensor) {
  const std::string a0 = "base_model.model.model.layers.0.self_attn.o_proj.lora_A.weight";
  const std::string b1 = "base_model.model.model.layers.1.mlp.gate_up_proj.lora_B.weight";
  auto load_error = [](const testing::TempDir& dir) {
    Phi3Model target = golden_model("phi4_tiny");
    return error_of([&] { load_peft_adapter(dir.path(), target); });
  };
  {  // Wrong shape.
    testing::TempDir dir;
    saved_adapter(dir);
    auto tensors = read_tensors(adapter_file(dir.path()));
    for (auto& [name, t] : tensors)
      if (name == a0) t = torch::zeros({4, 65});
    testing::write_tensors(adapter_file(dir.path()), tensors);
    const std::string msg = load_error(dir);
    EXPECT_MENTIONS(msg, adapter_file(dir.path()));
    EXPECT_MENTIONS(msg, a0 + " (expected [4, 64], found [4, 65])");
  }
  {  // Missing and unexpected tensors.
    testing::TempDir dir;
    saved_adapter(dir);
    auto tensors = read_tensors(adapter_file(dir.path()));
    std::vector<std::pair<std::string, torch::Tensor>> kept;
    for (auto& [name, t] : tensors)
      if (name != b1) kept.emplace_back(name, t);
    kept.emplace_back("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight",
                      torch::zeros({4, 64}));
    testing::write_tensors(adapter_file(dir.path()), kept);
    const std::string msg = load_error(dir);
    EXPECT_MENTIONS(msg, adapter_file(dir.path()));
    EXPECT_MENTIONS(msg, "1 missing tensors:\n    " + b1);
    EXPECT_MENTIONS(msg,
                    "unexpected tensors:\n    base_model.model.model.layers.0.self_attn.q_proj");
  }
  {  // The config's r disagrees with the tensors.
    testing::TempDir dir;
    saved_adapter(dir);
    auto j = nlohmann::json::parse(read_file(dir.file("adapter_config.json")));
    j["r"] = 8;
    testing::write_text(dir.file("adapter_config.json"), j.dump());
    const std::string msg = load_error(dir);
    EXPECT_MENTIONS(msg, adapter_file(dir.path()));
    EXPECT_MENTIONS(msg, a0 + " (expected [8, 64], found [4, 64])");
    EXPECT_MENTIONS(msg, "the tensors hold rank 4 but adapter_config.json says r = 8");
  }
  {  // An adapter for another model shape.
    testing::TempDir dir;
    saved_adapter(dir);
    Phi3Model mini = golden_model("mini_tiny");
    const std::string msg = error_of([&] { load_peft_adapter(dir.path(), mini); });
    EXPECT_MENTIONS(msg,
                    "base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight "
                    "(expected [4, 96], found [4, 64])");
    EXPECT_FALSE(mini.has_lora());
  }
  {  // No weights file; a pickle only.
    testing::TempDir dir;
    saved_adapter(dir);
    std::filesystem::rename(adapter_file(dir.path()), dir.file("adapter_model.bin"));
    const std::string msg = load_error(dir);
    EXPECT_MENTIONS(msg, adapter_file(dir.path()));
    EXPECT_MENTIONS(msg, "adapter_model.bin");
  }
  {  // A corrupt file is rejected by the safetensors reader, naming it.
    testing::TempDir dir;
    saved_adapter(dir);
    testing::write_text(adapter_file(dir.path()), "garbage");
    EXPECT_MENTIONS(load_error(dir), adapter_file(dir.path()));
  }
}

TEST(PeftIo, MergedModelDirectoryLoadsBack) {
  testing::TempDir dir;
  Phi3Model model = golden_model("phi4_tiny");
  model.attach_lora(small_lora(), 5);
  testing::randomize_lora_b(model, 6);
  EXPECT_MENTIONS(error_of([&] { save_model_dir(dir.path(), model); }), "merge_lora");
  torch::NoGradGuard no_grad;
  const auto tokens = two_rows(19, 320, 9);
  const auto adapted = batch_logits(model, tokens);
  model.merge_lora();
  save_model_dir(dir.path(), model, testing::golden_path("tokenizer/main"),
                 /*max_shard_bytes=*/100'000);
  EXPECT_TRUE(std::filesystem::exists(dir.file("model.safetensors.index.json")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("tokenizer.json")));
  const auto config = nlohmann::json::parse(read_file(dir.file("config.json")));
  EXPECT_EQ(config["dtype"], "float32");
  const Phi3Model loaded = Phi3Model::load(dir.path(), torch::kFloat, torch::kCPU);
  EXPECT_TRUE(torch::equal(batch_logits(loaded, tokens), batch_logits(model, tokens)));
  EXPECT_LT(max_abs_diff(batch_logits(loaded, tokens), adapted), fp32_tolerance(adapted));

  // bf16, tied (no lm_head written).
  testing::TempDir dir2;
  Phi3Model mini = golden_model("mini_tiny", torch::kBFloat16);
  save_model_dir(dir2.path(), mini);
  const Phi3Model mini_loaded = Phi3Model::load(dir2.path(), torch::kBFloat16, torch::kCPU);
  EXPECT_EQ(nlohmann::json::parse(read_file(dir2.file("config.json")))["dtype"], "bfloat16");
  EXPECT_TRUE(torch::equal(batch_logits(mini_loaded, tokens), batch_logits(mini, tokens)));
}

// PEFT and transformers read what align writes and compute what align computes: for each golden
// model (phi4_tiny; mini_tiny: tied, partial rotary, longrope, sliding window) an adapter with
// random B on all four projections, merged fp32 and bf16 model folders, token rows and align's
// logits with the adapter (fp32 and bf16 base), checked by tools/check_peft_load.py with align's
// venv python (peft and transformers installed by scripts/test.sh): PEFT's logits on an fp32 and
// a bf16 base, transformers' on the merged folder, PEFT's merge against align's merged weights.
TEST(PeftExport, PeftAndTransformersComputeAlignsLogits) {
  testing::TempDir out;
  torch::NoGradGuard no_grad;
  nlohmann::json manifest = nlohmann::json::array();
  for (const char* name : {"phi4_tiny", "mini_tiny"}) {
    const std::string base = testing::golden_model_dir(name);
    const std::string dir = out.file(name);
    Phi3Model model = golden_model(name);
    LoraOptions o = small_lora();
    o.alpha = 16;  // scale 4
    o.dropout = 0.05;
    model.attach_lora(o, 21);
    testing::randomize_lora_b(model, 22, 0.05);
    save_peft_adapter(dir + "/adapter", model, base);
    Phi3Model bf = golden_model(name, torch::kBFloat16);
    load_peft_adapter(dir + "/adapter", bf);
    std::vector<std::pair<std::string, torch::Tensor>> logits;
    nlohmann::json rows = nlohmann::json::array();
    for (int64_t k = 0; k < 3; ++k) {
      const auto ids = testing::random_tokens(std::vector<int64_t>{5, 31, 48}[k], 320, 40 + k);
      rows.push_back(ids);
      logits.emplace_back("fp32." + std::to_string(k), testing::full_logits(model, ids));
      logits.emplace_back("bf16." + std::to_string(k), testing::full_logits(bf, ids));
    }
    testing::write_tensors(dir + "/align_logits.safetensors", logits);
    model.merge_lora();
    save_model_dir(dir + "/merged", model);
    bf.merge_lora();
    save_model_dir(dir + "/merged_bf16", bf);
    manifest.push_back({{"name", name}, {"base", base}, {"dir", dir}, {"rows", rows}});
  }
  write_file_atomic(out.file("manifest.json"), manifest.dump(2));
  const std::string command = std::string(ALIGN_VENV_PYTHON) + " " +
                              testing::source_path("tools/check_peft_load.py") + " " +
                              out.file("manifest.json") + " 2>&1";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr) << command;
  std::string report;
  char buffer[512];
  while (std::fgets(buffer, sizeof buffer, pipe))
    report += buffer;
  const int status = ::pclose(pipe);
  EXPECT_EQ(status, 0) << command << "\n" << report;
  EXPECT_NE(report.find("\nOK"), std::string::npos) << report;
  if (status == 0) std::cout << report;
}

}  // namespace
}  // namespace align
