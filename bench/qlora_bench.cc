// bench/qlora: QLoRA (NF4 base, model/nf4.h) against LoRA on a bf16/fp32 base: the bytes of the
// base weights, the peak resident memory of a training step (CPU: VmHWM, reset before the steps)
// and tokens/s of the LoRA SFT step (forward, backward, AdamW on the adapters), with the CPU
// seconds a step used (all threads: on a shared machine less noisy than wall time).
//
//   qlora_bench [--shape bench52m|phi4-slice] [--layers N] [--dtype fp32|bf16] [--rows B]
//               [--seq T] [--steps N] [--rank R] [--checkpointing] [--dequant]
//
// bench52m: hidden 768, 8 layers, 12 heads, 4 KV heads, intermediate 2048, vocab 1216 (52M
// parameters). phi4-slice: Phi-4's layer sizes (hidden 5120, 40/10 heads, intermediate 17920) with
// --layers layers (default 2) and vocab 1216, so the projections are real size and the
// embeddings small. Each mode runs in its own child process (this binary with --only MODE) so
// that the peak memory of one does not hide the other's. --dequant times only the dequantisation
// of one gate_up_proj (the CPU path against the LibTorch reference). The model is built tensor by
// tensor and each projection quantised as it is produced, as Phi3Model::load does.
#include <sys/resource.h>
#include <torch/torch.h>

#include <unistd.h>
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "model/config.h"
#include "model/init.h"
#include "model/nf4.h"
#include "sft/sft_loss.h"
#include "train/adamw.h"

namespace {

struct Args {
  std::string shape = "bench52m", dtype = "fp32", only;
  int64_t layers = 0, rows = 2, seq = 256, steps = 5, rank = 16;
  bool checkpointing = false;
  bool dequant = false;  // only the dequantisation row
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app(
      "QLoRA (NF4 base) against LoRA: base bytes, step peak memory, tokens/s (see the "
      "comment at the top of bench/qlora_bench.cc)");
  app.add_option("--shape", a.shape, "bench52m or phi4-slice")
      ->check(CLI::IsMember({"bench52m", "phi4-slice"}));
  app.add_option("--layers", a.layers, "Layers (phi4-slice default 2)");
  app.add_option("--dtype", a.dtype, "fp32 or bf16");
  app.add_option("--rows", a.rows, "Rows per step");
  app.add_option("--seq", a.seq, "Tokens per row");
  app.add_option("--steps", a.steps, "Timed steps");
  app.add_option("--rank", a.rank, "LoRA rank");
  app.add_flag("--checkpointing", a.checkpointing, "Activation checkpointing");
  app.add_flag("--dequant", a.dequant, "Only the dequantisation row");
  app.add_option("--only", a.only, "Run one mode (the child processes this binary starts)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  return a;
}

align::ModelConfig bench_config(const Args& a) {
  align::ModelConfig c = align::model_preset("phi-4");
  if (a.shape == "bench52m") {
    c.hidden_size = 768;
    c.intermediate_size = 2048;
    c.num_layers = 8;
    c.num_heads = 12;
    c.num_kv_heads = 4;
  } else if (a.shape == "phi4-slice") {
    c.num_layers = 2;
  } else {
    std::fprintf(stderr, "unknown --shape %s\n", a.shape.c_str());
    std::exit(2);
  }
  c.vocab_size = 1216;
  c.bos_token_id = 1101;
  c.eos_token_ids = {1109};
  c.pad_token_id = 1193;
  if (a.layers > 0) c.num_layers = a.layers;
  align::validate_config(c, "qlora_bench");
  return c;
}

// VmHWM (peak resident set) or VmRSS from /proc/self/status (kB there), in GB (1e9 bytes).
double status_gb(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::stod(line.substr(std::strlen(key) + 1)) * 1024 / 1e9;
  }
  return -1;
}

// CPU seconds this process has used (user + system, all threads).
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

void reset_peak() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

// One mode in this process: prints "RESULT base_gb model_gb build_peak_gb step_peak_gb tok/s
// cpu_s_per_step loss".
int run_one(const Args& a) {
  const bool qlora = a.only == "qlora";
  const align::ModelConfig config = bench_config(a);
  const auto dtype = a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  std::map<std::string, torch::Tensor> dense;
  std::map<std::string, align::LinearWeight> projections;
  for (const align::TensorToSave& t : align::random_init_tensors(config, 0, dtype)) {
    const bool projection = t.name.find("_proj.weight") != std::string::npos;
    torch::Tensor x = t.produce().to(dtype);
    if (projection && qlora) {
      projections.emplace(t.name, align::LinearWeight(align::nf4_quantize(x), dtype));
    } else if (projection) {
      projections.emplace(t.name, align::LinearWeight(x));
    } else {
      dense.emplace(t.name, x);
    }
  }
  align::Phi3Model model(config, align::assemble_weights(
                                     config, [&](const std::string& n) { return dense.at(n); },
                                     [&](const std::string& n) { return projections.at(n); }));
  dense.clear();
  projections.clear();
  double base_bytes = 0, model_bytes = 0;
  for (const auto& layer : model.weights().layers) {
    for (const align::LinearWeight* p : {&layer.qkv, &layer.o, &layer.gate_up, &layer.down})
      base_bytes += static_cast<double>(p->nbytes());
    for (const torch::Tensor* n : {&layer.input_norm, &layer.post_norm})
      model_bytes += static_cast<double>(n->nbytes());
  }
  model_bytes += base_bytes + static_cast<double>(model.weights().embed.nbytes() +
                                                  model.weights().lm_head.nbytes() +
                                                  model.weights().norm.nbytes());
  const double build_peak = status_gb("VmHWM:");
  align::LoraOptions opt;
  opt.rank = a.rank;
  opt.alpha = 2.0 * static_cast<double>(a.rank);
  model.attach_lora(opt, 0);
  model.set_training(true);
  align::NamedTensors trainable = model.lora_parameters();
  align::AdamW adam(trainable, {});
  const int64_t B = a.rows, T = a.seq;
  torch::manual_seed(0);
  auto tokens = torch::randint(0, config.vocab_size, {B, T}, torch::kInt64);
  auto pos = torch::arange(T, torch::kInt64).view({1, T}).expand({B, T}).clone();
  auto seg = torch::zeros({B, T}, torch::kInt64);
  auto targets = torch::cat({tokens.narrow(1, 1, T - 1), torch::full({B, 1}, -100L)}, 1);
  align::TrainBatch batch{tokens, pos, seg, targets, B * (T - 1)};
  reset_peak();
  double seconds = 0, cpu = 0, loss = 0;
  for (int64_t s = 0; s < a.steps + 1; ++s) {  // step 0 warms up
    const auto start = std::chrono::steady_clock::now();
    const double cpu_start = cpu_seconds();
    adam.zero_grad();
    auto l =
        align::sft_loss_sum(model, batch, a.checkpointing) / static_cast<double>(batch.num_targets);
    l.backward();
    adam.step(1e-4);
    loss = l.item<double>();
    if (s > 0) {
      seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      cpu += cpu_seconds() - cpu_start;
    }
  }
  std::printf("RESULT %.6f %.6f %.4f %.4f %.2f %.4f %.5f\n", base_bytes / 1e9, model_bytes / 1e9,
              build_peak, status_gb("VmHWM:"), static_cast<double>(B * T * a.steps) / seconds,
              cpu / static_cast<double>(a.steps), loss);
  return 0;
}

// Seconds of the best of `reps` calls of f.
template <typename F>
double best_seconds(int reps, F&& f) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(
        best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

// The dequantisation of one gate_up_proj [2I, C] (NF4 + double quant) to the model dtype: the CPU
// path every QLoRA product calls (3 times a projection per checkpointed step) against the LibTorch
// reference; GB/s counts the bytes read (codes, scales) and written (the dense weight).
void dequant_rows(const align::ModelConfig& config, torch::ScalarType dtype) {
  torch::manual_seed(0);
  const align::Nf4Tensor q =
      align::nf4_quantize(torch::randn({2 * config.intermediate_size, config.hidden_size}));
  const double bytes =
      static_cast<double>(q.nbytes()) +
      static_cast<double>(q.numel()) * static_cast<double>(c10::elementSize(dtype));
  const torch::Tensor fast = align::nf4_dequantize(q, dtype);
  const double t_fresh = best_seconds(3, [&] { align::nf4_dequantize(q, dtype); });
  torch::Tensor reused = torch::empty(q.shape, dtype);  // as project() does
  const double t_reused = best_seconds(3, [&] { align::nf4_dequantize_rows(q, 0, reused); });
  torch::Tensor ref;
  const double t_ref = best_seconds(1, [&] { ref = align::nf4_dequantize_reference(q, dtype); });
  const bool equal = torch::equal(fast, ref) && torch::equal(reused, ref);
  std::printf(
      "dequant gate_up [%lld, %lld] -> %s (%s): into a reused buffer %.1f ms (%.2f GB/s), "
      "fresh buffer %.1f ms (%.2f GB/s), reference %.1f ms (%.2f GB/s); equal: %s\n",
      static_cast<long long>(q.shape[0]), static_cast<long long>(q.shape[1]),
      dtype == torch::kBFloat16 ? "bf16" : "fp32",
      align::kernels::nf4_dequant_cpu_vectorized() ? "AVX2" : "plain", t_reused * 1e3,
      bytes / t_reused / 1e9, t_fresh * 1e3, bytes / t_fresh / 1e9, t_ref * 1e3,
      bytes / t_ref / 1e9, equal ? "yes" : "NO");
}

}  // namespace

int main(int argc, char** argv) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // rows appear as they are measured
  const Args a = parse(argc, argv);
  if (!a.only.empty()) return run_one(a);
  const align::ModelConfig config = bench_config(a);
  if (a.dequant) {
    dequant_rows(config, a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32);
    return 0;
  }
  int64_t base_params = 0;
  for (const auto& [name, shape] : align::model_tensor_shapes(config)) {
    if (name.find("_proj.weight") != std::string::npos) base_params += shape[0] * shape[1];
  }
  std::printf(
      "qlora_bench: %s, %lld layers, hidden %lld, intermediate %lld, %.3g params (%.3g in the "
      "projections), %s CPU, batch %lld x %lld, LoRA r%lld on all four projections, %lld "
      "steps%s\n",
      a.shape.c_str(), static_cast<long long>(config.num_layers),
      static_cast<long long>(config.hidden_size), static_cast<long long>(config.intermediate_size),
      static_cast<double>(config.num_parameters()), static_cast<double>(base_params),
      a.dtype.c_str(), static_cast<long long>(a.rows), static_cast<long long>(a.seq),
      static_cast<long long>(a.rank), static_cast<long long>(a.steps),
      a.checkpointing ? ", activation checkpointing" : "");
  std::printf("%-6s %14s %8s %12s %14s %14s %10s %12s %9s\n", "mode", "proj GB", "B/param",
              "model GB", "build peak GB", "step peak GB", "tokens/s", "CPU s/step", "loss");
  char exe[4096] = {0};
  if (readlink("/proc/self/exe", exe, sizeof exe - 1) <= 0) return 1;
  const std::string self = exe;  // popen runs a shell: its /proc/self/exe would be the shell
  std::string args;
  for (int i = 1; i < argc; ++i)
    args += std::string(" '") + argv[i] + "'";
  for (const char* mode : {"lora", "qlora"}) {
    FILE* child = popen((self + args + " --only " + mode).c_str(), "r");
    char line[512];
    double v[7] = {0, 0, 0, 0, 0, 0, 0};
    bool got = false;
    while (child && std::fgets(line, sizeof line, child)) {
      got = got || std::sscanf(line, "RESULT %lf %lf %lf %lf %lf %lf %lf", &v[0], &v[1], &v[2],
                               &v[3], &v[4], &v[5], &v[6]) == 7;
    }
    if (child) pclose(child);
    if (!got) {
      std::fprintf(stderr, "qlora_bench: mode %s failed\n", mode);
      return 1;
    }
    std::printf("%-6s %14.4f %8.4f %12.4f %14.3f %14.3f %10.1f %12.3f %9.4f\n", mode, v[0],
                v[0] * 1e9 / static_cast<double>(base_params), v[1], v[2], v[3], v[4], v[5], v[6]);
  }
  return 0;
}
