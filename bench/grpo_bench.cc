// bench/grpo: seconds per GRPO step of align grpo (the recipe itself, grpo/grpo_recipe.h) on a
// random model, with the same model folder and prompts left for bench/grpo_trl.py (TRL's
// GRPOTrainer) to run; bench/grpo_compare.sh runs both and prints the two rows together.
//
//   grpo_bench --config bench/phi3_52m/config.json --tokenizer tests/golden/tokenizer/main
//              --out DIR [--device cpu|cuda] [--dtype fp32|bf16] [--prompts 8] [--generations 8]
//              [--new-tokens 64] [--lora-rank 16] [--steps 3] [--grad-accum 1]
//
// Writes DIR/model (random weights from --config, seed 0, the tokenizer's files beside them),
// DIR/prompts.jsonl (--prompts short text prompts, no chat template) and DIR/align (the run).
// Each step samples prompts x generations completions of up to --new-tokens tokens (temperature
// 1; the reward is a format regex) and takes one LoRA optimizer step (r, alpha 2r, the four
// projections, dapo, beta 0: TRL's defaults). Step 1 warms up and is not counted. Columns:
// seconds per step, of which sampling and grading (rollout_s) and the rest (scoring, backward,
// optimizer), completion tokens sampled per step and their rate.
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/jsonl.h"
#include "grpo/grpo_config.h"
#include "grpo/grpo_recipe.h"
#include "model/config.h"
#include "model/init.h"

namespace {

using namespace align;
namespace fs = std::filesystem;

struct Args {
  std::string config = "bench/phi3_52m/config.json", tokenizer = "tests/golden/tokenizer/main";
  std::string out, device = "cpu", dtype = "fp32";
  int64_t prompts = 8, generations = 8, new_tokens = 64, lora_rank = 16, steps = 3, grad_accum = 1;
};

void write_model(const Args& a, const std::string& dir) {
  fs::remove_all(dir);
  fs::create_directories(dir);
  ModelConfig config = load_model_config(a.config);
  validate_config(config, a.config);
  write_random_model(dir, config, 0, torch::kFloat32, 5'000'000'000);
  for (const auto& e : fs::directory_iterator(a.tokenizer))
    if (e.is_regular_file()) fs::copy_file(e.path(), fs::path(dir) / e.path().filename());
}

void write_prompts(const Args& a, const std::string& path) {
  std::ofstream out(path);
  for (int64_t i = 0; i < a.prompts; ++i) {
    const nlohmann::json line = {
        {"id", "q" + std::to_string(i)},
        {"text", "Question " + std::to_string(i) + ": what is " + std::to_string(17 * i + 3) +
                     " + " + std::to_string(29 * i + 11) + "? Answer:"}};
    out << line.dump() << "\n";
  }
}

GrpoConfig bench_config(const Args& a, const std::string& dir) {
  nlohmann::json j = {
      {"model", {{"path", dir + "/model"}, {"dtype", a.dtype}, {"device", a.device}}},
      {"data", {{"path", dir + "/prompts.jsonl"}, {"shuffle", false}}},
      {"sampling", {{"max_new_tokens", a.new_tokens}, {"temperature", 1.0}}},
      {"grpo",
       {{"num_generations", a.generations},
        {"prompts_per_step", a.prompts},
        {"rewards", {{{"type", "format"}, {"pattern", "[0-9]"}}}},
        {"log_completions", false}}},
      {"optimizer", {{"lr", 1e-5}}},
      {"schedule", {{"max_steps", a.steps + 1}}},
      {"training", {{"grad_accum", a.grad_accum}}},
      {"lora", {{"enabled", true}, {"rank", a.lora_rank}, {"alpha", 2 * a.lora_rank}}},
      {"output", {{"dir", dir + "/align"}}}};
  return parse_grpo_config(j, "grpo_bench");
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app(
      "Seconds per GRPO step of align grpo on a random model (see the comment at the top of "
      "bench/grpo_bench.cc)");
  app.add_option("--config", a.config, "Model config.json the random weights follow");
  app.add_option("--tokenizer", a.tokenizer, "Folder with the tokenizer files");
  app.add_option("--out", a.out, "Folder for the model, prompts and run")->required();
  app.add_option("--device", a.device, "cpu or cuda");
  app.add_option("--dtype", a.dtype, "fp32 or bf16");
  app.add_option("--prompts", a.prompts, "Prompts per step");
  app.add_option("--generations", a.generations, "Completions per prompt");
  app.add_option("--new-tokens", a.new_tokens, "Most tokens per completion");
  app.add_option("--lora-rank", a.lora_rank, "LoRA rank (alpha is twice it)");
  app.add_option("--steps", a.steps, "Timed steps (after one warm-up)")->check(CLI::PositiveNumber);
  app.add_option("--grad-accum", a.grad_accum, "Micro-batches per optimizer step");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    write_model(a, a.out + "/model");
    write_prompts(a, a.out + "/prompts.jsonl");
    fs::remove_all(a.out + "/align");
    const GrpoConfig config = bench_config(a, a.out);
    GrpoRunOptions options;
    options.source = "grpo_bench";
    run_grpo(config, options);
    // Per step: elapsed_s differences (evals and saves: none but the last step's save).
    std::vector<nlohmann::json> lines;
    for_each_jsonl(a.out + "/align/metrics.jsonl",
                   [&](const nlohmann::json& r, const JsonlLocation&) { lines.push_back(r); });
    double seconds = 0, rollout = 0, tokens = 0;
    for (size_t i = 1; i < lines.size(); ++i) {
      seconds += lines[i]["elapsed_s"].get<double>() - lines[i - 1]["elapsed_s"].get<double>();
      rollout += lines[i]["rollout_s"].get<double>();
      tokens += lines[i]["completions/mean_length"].get<double>() *
                static_cast<double>(a.prompts * a.generations);
    }
    const double n = static_cast<double>(lines.size() - 1);
    std::printf(
        "GRPO step: %s, %lld prompts x %lld generations x %lld new tokens, LoRA r%lld, "
        "%s %s, %lld steps timed (+1 warm-up), %d threads\n",
        a.config.c_str(), static_cast<long long>(a.prompts), static_cast<long long>(a.generations),
        static_cast<long long>(a.new_tokens), static_cast<long long>(a.lora_rank), a.device.c_str(),
        a.dtype.c_str(), static_cast<long long>(a.steps), torch::get_num_threads());
    std::printf("%-18s %9s %11s %9s %12s %11s\n", "side", "s/step", "rollout s", "train s",
                "tokens/step", "sampled/s");
    std::printf("%-18s %9.2f %11.2f %9.2f %12.0f %11.0f\n", "align grpo", seconds / n, rollout / n,
                (seconds - rollout) / n, tokens / n, tokens / rollout);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "grpo_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
