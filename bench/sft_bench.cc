// bench/sft: training throughput of the SFT step (forward, backward, clipping, AdamW) for full
// fine-tuning and LoRA, on random packed batches of a random model.
//
//   sft_bench [--preset tiny|phi-4|phi-4-mini | --config config.json] [--layers N]
//             [--device cpu|cuda] [--dtype fp32|bf16] [--rows B] [--seq T] [--docs N]
//             [--steps N] [--mode full|lora|both] [--lora-rank R] [--peak-tflops P]
//             [--checkpointing]
//
// Each row packs --docs examples (default 4; 1: plain causal rows). bench/sft_compare.sh runs this
// and bench/sft_transformers.py on the same load. Prints s/step, tokens/s, achieved TFLOP/s (6 N
// per token for full fine-tuning, 4 N for LoRA: N the non-embedding parameters plus the lm_head)
// and MFU against --peak-tflops (default: 800 for CUDA, the dense bf16 rate of an H100 in
// docs/speed_limits.md; none for CPU), and peak memory (CUDA allocator peak, or the process's max
// RSS on CPU: with --mode both the LoRA row includes the full run's peak).
#include <sys/resource.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "model/config.h"
#include "model/init.h"
#include "sft/sft_loss.h"
#include "train/adamw.h"
#include "train/grad_clip.h"

namespace {

struct Args {
  std::string preset = "tiny", config, device = "cpu", dtype = "fp32", mode = "both";
  int64_t layers = 0, rows = 4, seq = 256, docs = 4, steps = 10, lora_rank = 16;
  double peak_tflops = -1;
  bool checkpointing = false;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app(
      "SFT step throughput, full fine-tuning and LoRA (see the comment at the top of "
      "bench/sft_bench.cc)");
  app.add_option("--preset", a.preset, "tiny, phi-4 or phi-4-mini: a random model");
  app.add_option("--config", a.config, "config.json of a random model (instead of --preset)");
  app.add_option("--layers", a.layers, "Keep the first N layers");
  app.add_option("--device", a.device, "cpu or cuda");
  app.add_option("--dtype", a.dtype, "fp32 or bf16");
  app.add_option("--rows", a.rows, "Packed rows per step");
  app.add_option("--seq", a.seq, "Tokens per row");
  app.add_option("--docs", a.docs, "Examples packed per row (1: plain causal rows)");
  app.add_option("--steps", a.steps, "Timed steps");
  app.add_option("--mode", a.mode, "full, lora or both")
      ->check(CLI::IsMember({"full", "lora", "both"}));
  app.add_option("--lora-rank", a.lora_rank, "LoRA rank");
  app.add_option("--peak-tflops", a.peak_tflops, "FLOP/s limit for MFU");
  app.add_flag("--checkpointing", a.checkpointing, "Activation checkpointing");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return a;
}

double peak_memory_gb(const torch::Device& device) {
  if (device.is_cuda()) {
    return 0;  // filled by the caller through the CUDA allocator stats when available
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / (1024.0 * 1024.0);
}

struct Row {
  std::string mode;
  double seconds_per_step, tokens_per_s, tflops, mfu, memory_gb, loss;
};

Row run_mode(const Args& a, align::ModelConfig config, bool lora) {
  const torch::Device device = a.device == "cuda" ? torch::kCUDA : torch::kCPU;
  const auto dtype = a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  align::Phi3Model model = align::random_model(config, 0, dtype, device);
  align::NamedTensors trainable;
  if (lora) {
    align::LoraOptions opt;
    opt.rank = a.lora_rank;
    opt.alpha = 2.0 * a.lora_rank;
    model.attach_lora(opt, 0);
    trainable = model.lora_parameters();
  } else {
    trainable = align::named_weights(model.config(), model.weights());
    for (auto& [n, w] : trainable)
      w.requires_grad_(true);
  }
  model.set_training(true);
  align::AdamW adam(trainable, {});
  // Packed rows of --docs examples each, every token after the first of an example a target.
  const int64_t B = a.rows, T = a.seq, per = std::max<int64_t>(2, T / std::max<int64_t>(1, a.docs));
  auto tokens = torch::randint(0, config.vocab_size, {B, T}, torch::kInt64);
  auto pos = torch::arange(T, torch::kInt64).remainder(per).view({1, T}).expand({B, T}).clone();
  auto seg = torch::arange(T, torch::kInt64).div(per, "floor").view({1, T}).expand({B, T}).clone();
  auto targets = torch::cat({tokens.narrow(1, 1, T - 1), torch::full({B, 1}, -100L)}, 1);
  targets.masked_fill_(pos.eq(per - 1), -100);
  align::TrainBatch batch{tokens.to(device), pos.to(device), seg.to(device), targets.to(device),
                          targets.ne(-100).sum().item<int64_t>()};
  double loss = 0, seconds = 0;
  for (int64_t s = 0; s < a.steps + 1; ++s) {  // step 0 warms up
    if (device.is_cuda()) torch::cuda::synchronize();
    const auto start = std::chrono::steady_clock::now();
    adam.zero_grad();
    auto l =
        align::sft_loss_sum(model, batch, a.checkpointing) / static_cast<double>(batch.num_targets);
    l.backward();
    align::clip_grad_norm(trainable, 1.0);
    adam.step(1e-4);
    loss = l.item<double>();
    if (device.is_cuda()) torch::cuda::synchronize();
    if (s > 0)
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  const double tokens_per_s = static_cast<double>(B * T * a.steps) / seconds;
  const double n =
      static_cast<double>(config.num_parameters() - config.vocab_size * config.hidden_size *
                                                        (config.tie_word_embeddings ? 0 : 1));
  const double flops_per_token = (lora ? 4.0 : 6.0) * n;
  const double tflops = tokens_per_s * flops_per_token / 1e12;
  const double peak = a.peak_tflops > 0 ? a.peak_tflops : (device.is_cuda() ? 800.0 : -1.0);
  return {lora ? "lora r" + std::to_string(a.lora_rank) : "full",
          seconds / static_cast<double>(a.steps),
          tokens_per_s,
          tflops,
          peak > 0 ? tflops / peak : -1.0,
          peak_memory_gb(device),
          loss};
}

}  // namespace

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  const std::string source = a.config.empty() ? "preset " + a.preset : a.config;
  align::ModelConfig config =
      a.config.empty() ? align::model_preset(a.preset) : align::load_model_config(a.config);
  if (a.layers > 0) config.num_layers = a.layers;
  align::validate_config(config, source);
  std::printf(
      "align sft_bench: %s, %lld layers, hidden %lld, %.3g params, %s %s, batch %lld x %lld "
      "(%lld docs per row), %lld steps, %d threads%s\n",
      source.c_str(), static_cast<long long>(config.num_layers),
      static_cast<long long>(config.hidden_size), static_cast<double>(config.num_parameters()),
      a.device.c_str(), a.dtype.c_str(), static_cast<long long>(a.rows),
      static_cast<long long>(a.seq), static_cast<long long>(a.docs),
      static_cast<long long>(a.steps), torch::get_num_threads(),
      a.checkpointing ? ", activation checkpointing" : "");
  std::printf("%-10s %9s %12s %10s %8s %12s %9s\n", "mode", "s/step", "tokens/s", "TFLOP/s", "MFU",
              "peak mem GB", "loss");
  std::vector<bool> modes;
  if (a.mode != "lora") modes.push_back(false);
  if (a.mode != "full") modes.push_back(true);
  for (bool lora : modes) {
    const Row r = run_mode(a, config, lora);
    char mfu[32];
    if (r.mfu >= 0)
      std::snprintf(mfu, sizeof(mfu), "%.1f%%", 100 * r.mfu);
    else
      std::snprintf(mfu, sizeof(mfu), "n/a");
    std::printf("%-10s %9.3f %12.1f %10.4f %8s %12.2f %9.4f\n", r.mode.c_str(), r.seconds_per_step,
                r.tokens_per_s, r.tflops, mfu, r.memory_gb, r.loss);
    std::fflush(stdout);
  }
  return 0;
}
