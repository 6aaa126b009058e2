// bench/dpo: DPO training-step throughput on PTS token pairs, scored two ways on the same random
// model and the same pairs:
//   chains      every pivot of one completion from ONE forward over the completion's longest
//               prompt (dpo/pair_scoring.h make_chain_batch)
//   sequences   the usual concatenated chosen + rejected rows, prompt + one token each, padded
//               (TRL's concatenated forward; make_sequence_batch)
// Each step: policy forward, sigmoid loss against fixed reference log-probs, backward (LoRA).
//
//   dpo_bench [--device cpu|cuda] [--dtype fp32|bf16] [--completions G] [--pivots K] [--prompt P]
//             [--completion C] [--hidden 256] [--layers 4] [--vocab 8192] [--steps N]
//             [--preset phi-4|phi-4-mini|tiny]
// --preset takes the preset's shape (hidden, intermediate, heads, vocab) instead of --hidden and
// --vocab; --layers still sets the depth.
//
// Prints pairs/s and tokens/s (tokens the forward processes) per mode and the speed-up.
#include <torch/torch.h>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <random>
#include <string>

#include "dpo/dpo_loss.h"
#include "dpo/pair_scoring.h"
#include "model/config.h"
#include "model/init.h"

namespace {

using namespace align;

struct Args {
  std::string device = "cpu", dtype = "fp32", preset;
  int64_t completions = 4, pivots = 8, prompt = 64, completion = 128, hidden = 256, layers = 4,
          vocab = 8192, steps = 3;
};

double seconds_per_step(Phi3Model& model, const PairBatch& b, int64_t steps) {
  const DpoLossOptions opt{DpoLossType::kSigmoid, 0.1, 0.0};
  auto once = [&] {
    const PairLogps s = score_pairs(model, b);
    const DpoLossOutput out =
        dpo_loss(opt, s.chosen, s.rejected, b.ref_chosen.to(s.chosen.device()),
                 b.ref_rejected.to(s.chosen.device()));
    out.losses.mean().backward();
    if (model.device().is_cuda()) torch::cuda::synchronize();
  };
  once();  // warm-up
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < steps; ++i)
    once();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
         static_cast<double>(steps);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app(
      "DPO step time on token-level pairs: completions x pivots scored in one forward "
      "(see the comment at the top of bench/dpo_bench.cc)");
  app.add_option("--device", a.device, "cpu or cuda");
  app.add_option("--dtype", a.dtype, "fp32 or bf16");
  app.add_option("--preset", a.preset, "A model preset (else --hidden/--vocab shape a small one)");
  app.add_option("--completions", a.completions, "Completions per step");
  app.add_option("--pivots", a.pivots, "Pivots per completion");
  app.add_option("--prompt", a.prompt, "Prompt tokens");
  app.add_option("--completion", a.completion, "Completion tokens");
  app.add_option("--hidden", a.hidden, "Hidden size (without --preset)");
  app.add_option("--layers", a.layers, "Layers");
  app.add_option("--vocab", a.vocab, "Vocabulary (without --preset)");
  app.add_option("--steps", a.steps, "Timed steps");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  torch::manual_seed(0);
  ModelConfig c = model_preset(a.preset.empty() ? "tiny" : a.preset);
  if (a.preset.empty()) {
    c.hidden_size = a.hidden;
    c.intermediate_size = 2 * a.hidden;
    c.vocab_size = a.vocab;
    c.max_position_embeddings = 4096;
  }
  c.num_layers = a.layers;
  validate_config(c, "dpo_bench");
  a.hidden = c.hidden_size;
  a.vocab = c.vocab_size;
  const torch::Device device(a.device);
  const auto dtype = a.dtype == "bf16" ? torch::kBFloat16 : torch::kFloat32;
  Phi3Model model = random_model(c, 0, dtype, device);
  model.attach_lora({16, 32, 0.0, {"qkv_proj", "o_proj", "gate_up_proj", "down_proj"}}, 0);
  model.set_training(true);

  // G completions of prompt + completion tokens; K pivots at distinct completion positions.
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<int64_t> tok(4, a.vocab - 1);
  std::vector<TokenPair> pairs;
  std::vector<PreferencePair> as_sequences;
  for (int64_t g = 0; g < a.completions; ++g) {
    std::vector<TokenId> full(static_cast<size_t>(a.prompt + a.completion));
    for (auto& t : full)
      t = static_cast<TokenId>(tok(rng));
    for (int64_t k = 0; k < a.pivots; ++k) {
      const int64_t len =
          a.prompt + 1 + (k * (a.completion - 1)) / std::max<int64_t>(1, a.pivots - 1);
      TokenPair p;
      p.query_id = "q" + std::to_string(g);
      p.prompt.assign(full.begin(), full.begin() + len);
      p.chosen = static_cast<TokenId>(tok(rng));
      p.rejected = static_cast<TokenId>((p.chosen + 1) % a.vocab);
      p.ref_chosen = -9.0;
      p.ref_rejected = -9.0;
      pairs.push_back(p);
      PreferencePair s{p.prompt, {p.chosen}, {p.rejected}, 1.0, {}, {}};
      s.ref_chosen = -9.0;
      s.ref_rejected = -9.0;
      as_sequences.push_back(s);
    }
  }
  const std::vector<PairChain> chains = build_pair_chains(pairs);
  std::vector<int64_t> all_chains(chains.size()), all_pairs(pairs.size());
  for (size_t i = 0; i < chains.size(); ++i)
    all_chains[i] = static_cast<int64_t>(i);
  for (size_t i = 0; i < pairs.size(); ++i)
    all_pairs[i] = static_cast<int64_t>(i);
  const PairBatch chain_batch = make_chain_batch(pairs, chains, all_chains, 0);
  const PairBatch seq_batch = make_sequence_batch(as_sequences, all_pairs, 0);

  const double t_chain = seconds_per_step(model, chain_batch, a.steps);
  const double t_seq = seconds_per_step(model, seq_batch, a.steps);
  const double n = static_cast<double>(pairs.size());
  std::printf(
      "dpo_bench: %s %s, hidden %lld, layers %lld, vocab %lld, LoRA r16; %lld completions "
      "x %lld pivots (prompt %lld + completion %lld tokens)\n",
      a.device.c_str(), a.dtype.c_str(), (long long)a.hidden, (long long)a.layers,
      (long long)a.vocab, (long long)a.completions, (long long)a.pivots, (long long)a.prompt,
      (long long)a.completion);
  std::printf(
      "| mode | rows | tokens/step | s/step | pairs/s | tokens/s |\n|---|---|---|---|---|---|\n");
  std::printf("| chains (one forward per completion) | %lld | %lld | %.3f | %.1f | %.0f |\n",
              (long long)chain_batch.tokens.size(0), (long long)chain_batch.real_tokens, t_chain,
              n / t_chain, static_cast<double>(chain_batch.real_tokens) / t_chain);
  std::printf("| concatenated chosen+rejected sequences | %lld | %lld | %.3f | %.1f | %.0f |\n",
              (long long)seq_batch.tokens.size(0), (long long)seq_batch.real_tokens, t_seq,
              n / t_seq, static_cast<double>(seq_batch.real_tokens) / t_seq);
  std::printf("speed-up (pairs/s): %.2fx\n", t_seq / t_chain);
  return 0;
}
