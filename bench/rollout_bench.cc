// bench/rollout: generation throughput of the engine.
//   (a) batch-1 decode: one prompt, one sample, --new-tokens tokens (greedy);
//   (b) a PTS-shaped load: --samples samples from each of --prefixes nested prefixes of one
//       --completion-token completion, --new-tokens new tokens each (temperature 1).
// Prints tokens/s, the engine's host time per step (Engine::Stats::host_seconds: all but the
// model's layers and the sampler), achieved weight-read bandwidth for (a) (model bytes x steps / s:
// the batch-1 limit) and achieved FLOP/s for (b) (2 N per generated token), against --peak-gbs /
// --peak-tflops when given (defaults on CUDA: 3000 GB/s and 800 TFLOP/s, the H100 figures of
// docs/speed_limits.md; none on CPU).
//
//   rollout_bench (--model DIR | --preset phi-4|phi-4-mini|tiny | --config config.json)
//                 [--layers N] [--save-config FILE] [--device cpu|cuda] [--dtype fp32|bf16]
//                 [--prefixes 8] [--samples 64] [--completion 512] [--new-tokens 256]
//                 [--kv-budget-tokens N (default: what the PTS-shaped load needs at once)]
//                 [--decode-buckets] [--cuda-graphs] [--cascade-decode]
// --preset / --config build a random model of that shape in-process (no checkpoint on disk: a
// Phi-4-shaped one is 29 GB); --layers keeps the first N layers; --save-config writes the shape
// used as a Hugging Face config.json, for bench/rollout_transformers.py --config.
// --decode-buckets / --cuda-graphs: EngineOptions' decode_buckets / cuda_graphs (decode steps on
// persistent padded buffers; on CUDA captured and replayed as graphs). --cascade-decode:
// EngineOptions::cascade_decode (CUDA: forks of one prompt decode in the shared-prefix form).
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <string>

#include "model/config.h"
#include "model/init.h"
#include "model/phi3_model.h"
#include "rollout/engine.h"

namespace {

struct Args {
  std::string model, preset, config, save_config, device = "cpu", dtype = "fp32";
  int64_t layers = 0;
  int64_t prefixes = 8, samples = 64, completion = 512, new_tokens = 256;
  int64_t kv_budget_tokens = 0;  // 0: what the PTS-shaped load needs (see main)
  double peak_gbs = -1, peak_tflops = -1;
  bool decode_buckets = false, cuda_graphs = false, cascade_decode = false;
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app(
      "Rollout engine throughput: batch-1 decode and a PTS-shaped load (see the comment "
      "at the top of bench/rollout_bench.cc)");
  auto* model = app.add_option("--model", a.model, "Hugging Face model directory");
  auto* preset = app.add_option("--preset", a.preset, "phi-4, phi-4-mini or tiny: a random model");
  auto* config = app.add_option("--config", a.config, "config.json of a random model");
  model->excludes(preset)->excludes(config);
  preset->excludes(config);
  app.add_option("--layers", a.layers, "Keep the first N layers");
  app.add_option("--save-config", a.save_config, "Write the shape used as a config.json");
  app.add_option("--device", a.device, "cpu or cuda");
  app.add_option("--dtype", a.dtype, "fp32 or bf16");
  app.add_option("--prefixes", a.prefixes, "Nested prefixes of the PTS-shaped load");
  app.add_option("--samples", a.samples, "Samples per prefix");
  app.add_option("--completion", a.completion, "Tokens of the completion the prefixes cut");
  app.add_option("--new-tokens", a.new_tokens, "New tokens per sample");
  app.add_option("--kv-budget-tokens", a.kv_budget_tokens,
                 "KV cache tokens (default: what the PTS-shaped load needs at once)");
  app.add_flag("--decode-buckets", a.decode_buckets, "EngineOptions::decode_buckets");
  app.add_flag("--cuda-graphs", a.cuda_graphs, "EngineOptions::cuda_graphs");
  app.add_flag("--cascade-decode", a.cascade_decode, "EngineOptions::cascade_decode");
  app.add_option("--peak-gbs", a.peak_gbs, "Memory bandwidth limit for the batch-1 row");
  app.add_option("--peak-tflops", a.peak_tflops, "FLOP/s limit for the PTS-shaped row");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  if (a.model.empty() + a.preset.empty() + a.config.empty() != 2) {
    std::fprintf(stderr, "%s: give one of --model, --preset, --config\n", argv[0]);
    std::exit(2);
  }
  return a;
}

align::Phi3Model load_or_init(const Args& a, torch::ScalarType dtype, torch::Device device) {
  if (!a.model.empty()) return align::Phi3Model::load(a.model, dtype, device);
  align::ModelConfig c =
      a.preset.empty() ? align::load_model_config(a.config) : align::model_preset(a.preset);
  if (a.layers > 0) c.num_layers = a.layers;
  align::validate_config(c, a.preset.empty() ? a.config : "preset " + a.preset);
  if (!a.save_config.empty()) {
    auto json = align::to_hf_json(c);
    json["torch_dtype"] = json["dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : "float32";
    std::ofstream(a.save_config) << json.dump(2) << "\n";
  }
  return align::random_model(c, 0, dtype, device);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

static int run_bench(const Args& a) {
  const torch::Device device = a.device == "cuda" ? torch::kCUDA : torch::kCPU;
  const auto dtype = a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  const align::Phi3Model model = load_or_init(a, dtype, device);
  const auto& c = model.config();
  const double params = static_cast<double>(c.num_parameters());
  const double weight_bytes = params * (dtype == torch::kBFloat16 ? 2 : 4);
  const double peak_gbs = a.peak_gbs > 0 ? a.peak_gbs : (device.is_cuda() ? 3000 : -1);
  const double peak_tflops = a.peak_tflops > 0 ? a.peak_tflops : (device.is_cuda() ? 800 : -1);
  align::EngineOptions opt;
  opt.decode_buckets = a.decode_buckets;
  opt.cuda_graphs = a.cuda_graphs;
  opt.cascade_decode = a.cascade_decode;
  // By default the KV cache holds the PTS-shaped load at once: the prompts (shared by their
  // samples) plus every sample's new tokens, a page of slack each. A fixed large budget would not
  // fit: a million tokens of Phi-4's cache is 200 GB.
  const int64_t page = opt.page_size;
  opt.kv_budget_tokens =
      a.kv_budget_tokens > 0
          ? a.kv_budget_tokens
          : std::max<int64_t>(4096, a.prefixes * (a.completion + page) +
                                        a.prefixes * a.samples * (a.new_tokens + page));

  // One random completion; prompts are its prefixes at evenly spaced cut points.
  torch::manual_seed(0);
  const auto ids = torch::randint(0, c.vocab_size, {a.completion}, torch::kInt64);
  std::vector<align::TokenId> completion(ids.data_ptr<int64_t>(),
                                         ids.data_ptr<int64_t>() + a.completion);

  const std::string source =
      !a.model.empty() ? a.model : (a.preset.empty() ? a.config : "random " + a.preset);
  std::printf("rollout_bench: %s, %lld layers, %.3g params, %s %s\n", source.c_str(),
              static_cast<long long>(c.num_layers), params, a.device.c_str(), a.dtype.c_str());
  std::printf("%-28s %10s %12s %14s %10s\n", "load", "tokens", "tokens/s", "achieved", "of peak");

  {  // (a) batch-1 decode
    align::Engine engine(model, nullptr, opt);
    align::GenerationRequest r;
    r.prompt.assign(completion.begin(), completion.begin() + std::min<int64_t>(16, a.completion));
    r.max_new_tokens = a.new_tokens;
    r.sampling.temperature = 0;
    engine.generate({r});  // warm-up (with --cuda-graphs: captures the 1-row graph)
    // Timed on a fresh engine (a cold prefix cache); with --cuda-graphs on the warm one, whose
    // graph is captured (its prompt then comes from the prefix cache: 16 tokens).
    std::optional<align::Engine> fresh;
    if (!a.cuda_graphs) fresh.emplace(model, nullptr, opt);
    align::Engine& timed = fresh ? *fresh : engine;
    const auto start = std::chrono::steady_clock::now();
    const auto out = timed.generate({r});
    const double s = seconds_since(start);
    const double n = static_cast<double>(out[0][0].tokens.size());
    const double gbs = weight_bytes * n / s / 1e9;
    char of_peak[32] = "n/a";
    if (peak_gbs > 0) std::snprintf(of_peak, sizeof(of_peak), "%.1f%%", 100 * gbs / peak_gbs);
    std::printf("%-28s %10.0f %12.1f %10.2f GB/s %10s\n", "batch-1 decode", n, n / s, gbs, of_peak);
  }
  {  // (b) PTS-shaped load
    std::vector<align::GenerationRequest> requests;
    for (int64_t p = 0; p < a.prefixes; ++p) {
      align::GenerationRequest r;
      const int64_t cut = std::max<int64_t>(1, a.completion * (p + 1) / a.prefixes);
      r.prompt.assign(completion.begin(), completion.begin() + cut);
      r.num_samples = a.samples;
      r.max_new_tokens = a.new_tokens;
      r.sampling.temperature = 1.0;
      r.sampling.seed = static_cast<uint64_t>(1000 * p);
      requests.push_back(r);
    }
    align::Engine engine(model, nullptr, opt);
    const auto start = std::chrono::steady_clock::now();
    const auto out = engine.generate(requests);
    const double s = seconds_since(start);
    double n = 0;
    for (const auto& req : out) {
      for (const auto& sample : req)
        n += static_cast<double>(sample.tokens.size());
    }
    const double tflops = 2 * params * n / s / 1e12;
    char label[64], of_peak[32] = "n/a";
    std::snprintf(label, sizeof(label), "PTS %lldx%lld, %lld new",
                  static_cast<long long>(a.prefixes), static_cast<long long>(a.samples),
                  static_cast<long long>(a.new_tokens));
    if (peak_tflops > 0) {
      std::snprintf(of_peak, sizeof(of_peak), "%.1f%%", 100 * tflops / peak_tflops);
    }
    std::printf("%-28s %10.0f %12.1f %8.4f TFLOP/s %8s\n", label, n, n / s, tflops, of_peak);
    const auto& st = engine.stats();
    std::printf(
        "engine: prefill %lld tokens, reused prefix %lld, decode %lld, steps %lld, peak "
        "pages %lld\n",
        static_cast<long long>(st.prefill_tokens), static_cast<long long>(st.reused_prefix_tokens),
        static_cast<long long>(st.decode_tokens), static_cast<long long>(st.steps),
        static_cast<long long>(st.peak_pages));
    std::printf("engine host time per step: %.3f ms (%.1f%% of the load's time)\n",
                1e3 * st.host_seconds / static_cast<double>(std::max<int64_t>(1, st.steps)),
                100 * st.host_seconds / s);
    if (opt.decode_buckets || opt.cuda_graphs) {
      std::printf(
          "decode steps on bucket buffers: %lld of %lld, CUDA graphs captured: %lld "
          "(capture inside the timed run)\n",
          static_cast<long long>(engine.bucketed_steps()), static_cast<long long>(st.steps),
          static_cast<long long>(engine.graphs_captured()));
    }
  }
  return 0;
}

int main(int argc, char** argv) {
  const Args a = parse(argc, argv);
  try {
    return run_bench(a);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rollout_bench: %s\n", e.what());
    return 1;
  }
}
