// NF4 (QLoRA) storage: quantisation and dequantisation against bitsandbytes' own (golden file
// tests/golden/nf4/bnb_nf4.safetensors from tools/golden_nf4.py, bitsandbytes 0.50.2 on the CPU),
// and the quantised model: the same forward as a dense model holding the dequantised weights, LoRA
// trained on top, merged into a dequantised copy, and its loss within a bound of plain LoRA's.
#include <gtest/gtest.h>

#include <filesystem>
#include <limits>

#include "common/atomic_file.h"
#include "common/error.h"
#include "model/checkpoint.h"
#include "model/nf4.h"
#include "model/peft_io.h"
#include "tests/model/lora_test_util.h"

namespace align {
namespace {

using testing::batch_logits;
using testing::golden_model;
using testing::golden_model_dir;
using testing::max_abs_diff;
using testing::small_lora;
using testing::two_rows;

const Checkpoint& golden() {
  static const Checkpoint file = Checkpoint::open(testing::golden_path("nf4/bnb_nf4.safetensors"));
  return file;
}

torch::Tensor g(const std::string& name) {
  const TensorView& v = golden().view(name);
  return golden().get(name, to_torch_dtype(v.dtype), torch::kCPU).clone();
}

const std::vector<std::string> kCases = {"f32_64x640", "bf16_130x70", "f32_7x9", "bf16_96x192",
                                         "f32_zero_block"};

// bitsandbytes' state of a case as an Nf4Tensor (plain or double-quantised).
Nf4Tensor bnb_state(const std::string& c, bool double_quant) {
  Nf4Tensor q;
  q.shape = g(c + ".weight").sizes().vec();
  q.packed = g(c + ".packed");
  if (double_quant) {
    q.absmax = g(c + ".dq.absmax");
    q.absmax2 = g(c + ".dq.absmax2");
    q.code2 = g("dynamic_map");
    q.offset = g(c + ".dq.offset").item<float>();
  } else {
    q.absmax = g(c + ".absmax");
  }
  return q;
}

TEST(Nf4, LevelsAndDynamicMapAreBitsandbytes) {
  const auto& l = nf4_levels();
  EXPECT_TRUE(torch::equal(torch::tensor(std::vector<float>(l.begin(), l.end())), g("levels")));
  EXPECT_TRUE(torch::equal(dynamic_map_signed(), g("dynamic_map")));
}

TEST(Nf4, QuantiseMatchesBitsandbytes) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c);
    const torch::Tensor w = g(c + ".weight");
    const Nf4Tensor q = nf4_quantize(w, {64, /*double_quant=*/false});
    EXPECT_EQ(q.shape, w.sizes().vec());
    EXPECT_TRUE(torch::equal(q.packed, g(c + ".packed")));
    EXPECT_TRUE(torch::equal(q.absmax, g(c + ".absmax")));
    EXPECT_TRUE(torch::equal(nf4_dequantize(q, w.scalar_type()), g(c + ".deq")));
  }
}

// Double quantisation: the same 4-bit codes, offset and second-level scales. The 8-bit absmax
// codes are the nearest entries of the dynamic map; bitsandbytes' CPU kernel (a table-driven
// binary search) picks the lower neighbour in a few near-ties (there |x - code| differs by < 1e-5
// between the two), so a code may be one step off; every block whose code agrees dequantises
// to the same bits.
TEST(Nf4, DoubleQuantMatchesBitsandbytes) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c);
    const torch::Tensor w = g(c + ".weight");
    const Nf4Tensor q = nf4_quantize(w, {64, /*double_quant=*/true});
    EXPECT_TRUE(torch::equal(q.packed, g(c + ".packed")));
    EXPECT_EQ(q.offset, g(c + ".dq.offset").item<float>());
    const torch::Tensor want2 = g(c + ".dq.absmax2");
    EXPECT_TRUE(torch::equal(q.absmax2, want2));
    const torch::Tensor codes = q.absmax.to(torch::kLong),
                        want = g(c + ".dq.absmax").to(torch::kLong);
    const torch::Tensor differ = codes != want;
    const int64_t blocks = q.blocks();
    if (want2.abs().max().item<float>() > 0) {  // a lone block codes 0 / 0: nothing to compare
      EXPECT_LE(differ.sum().item<int64_t>(), std::max<int64_t>(1, blocks / 100));
      EXPECT_LE((codes - want).abs().max().item<int64_t>(), 1);
    }
    const torch::Tensor mine = nf4_dequantize(q, w.scalar_type()).reshape(-1);
    const torch::Tensor bnb = g(c + ".dq.deq").reshape(-1);
    const int64_t n = q.numel();
    auto block_of = torch::arange(n, torch::kLong).div(64, "floor");
    auto same = differ.index_select(0, block_of).logical_not();
    if (want2.abs().max().item<float>() == 0) same = torch::ones_like(same);
    EXPECT_TRUE(torch::equal(mine.masked_select(same), bnb.masked_select(same)));
  }
}

// Dequantising bitsandbytes' own state reproduces its dequantize_4bit bit for bit.
TEST(Nf4, DequantiseBitsandbytesStateExactly) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c);
    const auto dtype = g(c + ".weight").scalar_type();
    EXPECT_TRUE(torch::equal(nf4_dequantize(bnb_state(c, false), dtype), g(c + ".deq")));
    const Nf4Tensor dq = bnb_state(c, true);
    EXPECT_TRUE(torch::equal(nf4_block_absmax(dq), g(c + ".dq.block_absmax")));
    EXPECT_TRUE(torch::equal(nf4_dequantize(dq, dtype), g(c + ".dq.deq")));
    // The other dtype: the same fp32 products, rounded once.
    const auto other = dtype == torch::kFloat ? torch::kBFloat16 : torch::kFloat;
    EXPECT_TRUE(
        torch::equal(nf4_dequantize(dq, other), nf4_dequantize(dq, torch::kFloat).to(other)));
  }
}

TEST(Nf4, StorageIsAboutHalfAByteAParameter) {
  const Nf4Tensor plain = nf4_quantize(torch::randn({256, 1024}), {64, false});
  const Nf4Tensor dq = nf4_quantize(torch::randn({256, 1024}), {64, true});
  const double n = 256.0 * 1024;
  EXPECT_DOUBLE_EQ(plain.nbytes() / n, 0.5 + 4.0 / 64);                          // 0.5625
  EXPECT_NEAR(dq.nbytes() / n, 0.5 + 1.0 / 64 + 4.0 / (64 * 256), 256 * 4 / n);  // ~0.5159
}

// Awkward NF4 states for the CPU kernel: odd sizes, short last blocks, blocksizes that are not 64
// (2, 30, 128, 258: the vector code handles 64 elements at a time, the rest is the plain tail),
// more than 256 blocks (two second-level groups), plain and double-quantised.
std::vector<std::pair<std::string, Nf4Tensor>> awkward_states() {
  std::vector<std::pair<std::string, Nf4Tensor>> states;
  torch::manual_seed(3);
  const std::vector<std::vector<int64_t>> shapes = {{1, 1},    {7, 9},    {3, 130}, {19, 64},
                                                    {130, 70}, {5, 1001}, {300, 65}};
  for (const auto& shape : shapes) {
    for (int64_t bs : {2, 30, 64, 128, 258}) {
      for (bool dq : {false, true}) {
        // Scales over many binades, so bf16 rounding meets every case.
        auto w = torch::randn(shape) * torch::exp(torch::randn(shape) * 4);
        states.emplace_back(c10::str(shape[0], "x", shape[1], " bs", bs, dq ? " dq" : ""),
                            nf4_quantize(w, {bs, dq}));
      }
    }
  }
  return states;
}

// The CPU kernel (vector and plain code) against the LibTorch reference: bit for bit, both
// dtypes. The reference's fp32 products rounded once are exactly what the kernel computes, so
// the tolerance is zero.
TEST(Nf4, CpuKernelEqualsTheReference) {
  std::cout << "vectorised CPU path: " << (kernels::nf4_dequant_cpu_vectorized() ? "AVX2" : "none")
            << "\n";
  for (const auto& [name, q] : awkward_states()) {
    SCOPED_TRACE(name);
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      const torch::Tensor want = nf4_dequantize_reference(q, dtype);
      EXPECT_TRUE(torch::equal(nf4_dequantize_cpu(q, dtype, kernels::CpuPath::Best), want));
      EXPECT_TRUE(torch::equal(nf4_dequantize_cpu(q, dtype, kernels::CpuPath::Plain), want));
      EXPECT_TRUE(torch::equal(nf4_dequantize(q, dtype), want));
    }
  }
}

// Any slice of rows (starting mid-block, and on a low nibble when `in` is odd) is the same rows
// of the whole; out of range, a wrong width or a non-contiguous out is refused.
TEST(Nf4, RowsEqualTheWholeWeightsRows) {
  for (const auto& [name, q] : awkward_states()) {
    SCOPED_TRACE(name);
    const int64_t rows = q.shape[0];
    for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
      const torch::Tensor whole = nf4_dequantize_reference(q, dtype);
      for (const auto& [row0, count] : std::vector<std::pair<int64_t, int64_t>>{
               {0, rows}, {rows / 3, (rows + 1) / 2}, {rows - 1, 1}, {rows / 2, 0}}) {
        torch::Tensor out = torch::full({count, q.shape[1]}, 7.0, dtype);
        nf4_dequantize_rows(q, row0, out);
        EXPECT_TRUE(torch::equal(out, whole.narrow(0, row0, count))) << row0 << " + " << count;
      }
    }
  }
  const Nf4Tensor q = nf4_quantize(torch::randn({6, 10}));
  torch::Tensor out = torch::empty({2, 10});
  EXPECT_THROW(nf4_dequantize_rows(q, 5, out), Error);
  torch::Tensor narrow_out = torch::empty({2, 9});
  EXPECT_THROW(nf4_dequantize_rows(q, 0, narrow_out), Error);
  torch::Tensor strided = torch::empty({10, 2}).t();
  EXPECT_THROW(nf4_dequantize_rows(q, 0, strided), Error);
  torch::Tensor half = torch::empty({2, 10}, torch::kHalf);
  EXPECT_THROW(nf4_dequantize_rows(q, 0, half), Error);
}

// A non-finite scale (a state not from nf4_quantize, which refuses non-finite weights) gives NaN
// or infinity where the reference does, in every path.
TEST(Nf4, NonFiniteScalesFollowTheReference) {
  Nf4Tensor q = nf4_quantize(torch::randn({4, 64}), {64, false});
  q.absmax = torch::tensor({std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(), 1e38f, 3.0f});
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const torch::Tensor want = nf4_dequantize_reference(q, dtype).to(torch::kFloat);
    for (auto path : {kernels::CpuPath::Best, kernels::CpuPath::Plain}) {
      const torch::Tensor got = nf4_dequantize_cpu(q, dtype, path).to(torch::kFloat);
      EXPECT_TRUE(torch::equal(got.isnan(), want.isnan()));
      EXPECT_TRUE(torch::equal(got.nan_to_num(0), want.nan_to_num(0)));
    }
  }
}

// On the CPU every product dequantises into one reused per-thread buffer: products of different
// sizes and dtypes in any order, forward and backward, give what dequantise-then-matmul gives.
TEST(Nf4, ProductsThroughTheReusedBufferEqualTheReference) {
  torch::manual_seed(5);
  const LinearWeight big(nf4_quantize(torch::randn({96, 130})), torch::kFloat);
  const LinearWeight small(nf4_quantize(torch::randn({9, 96})), torch::kBFloat16);
  const auto x = torch::randn({3, 130}).requires_grad_();
  const auto h = project(x, big);                         // fp32 [3, 96]
  const auto y = project(h.to(torch::kBFloat16), small);  // bf16 [3, 9]
  const auto wb = nf4_dequantize_reference(big.nf4(), torch::kFloat);
  const auto ws = nf4_dequantize_reference(small.nf4(), torch::kBFloat16);
  const auto x2 = x.detach().clone().requires_grad_();
  const auto h2 = at::linear(x2, wb);
  const auto y2 = at::linear(h2.to(torch::kBFloat16), ws);
  EXPECT_TRUE(torch::equal(h, h2));
  EXPECT_TRUE(torch::equal(y, y2));
  const auto g = torch::randn({3, 9}).to(torch::kBFloat16);
  y.backward(g);
  y2.backward(g);
  EXPECT_TRUE(torch::equal(x.grad(), x2.grad()));
  EXPECT_TRUE(torch::equal(project(x.detach(), big), h2.detach()));  // after the small one
}

Phi3Model quantized_golden(torch::ScalarType dtype, bool double_quant = true) {
  return Phi3Model::load(golden_model_dir("phi4_tiny"), dtype, torch::kCPU,
                         Nf4Options{64, double_quant});
}

// The dense model whose projections hold the dequantised NF4 weights.
Phi3Model dequantized_copy(const Phi3Model& q) {
  std::map<std::string, torch::Tensor> tensors;
  for (const auto& [name, t] : q.named_weights())
    tensors[name] = t;
  return Phi3Model(q.config(), assemble_weights(q.config(), [&](const std::string& n) {
                     return tensors.at(n);
                   }));
}

TEST(Nf4Model, LoadQuantisesOnlyTheProjections) {
  const Phi3Model q = quantized_golden(torch::kBFloat16);
  const Phi3Model dense = golden_model("phi4_tiny", torch::kBFloat16);
  EXPECT_TRUE(q.quantized());
  EXPECT_FALSE(dense.quantized());
  const LayerWeights& w = q.weights().layers[0];
  for (const LinearWeight* p : {&w.qkv, &w.o, &w.gate_up, &w.down}) {
    EXPECT_TRUE(p->quantized());
    EXPECT_EQ(p->dtype(), torch::kBFloat16);
  }
  EXPECT_EQ(w.qkv.out_features(), dense.weights().layers[0].qkv.dense().size(0));
  EXPECT_EQ(w.qkv.in_features(), dense.weights().layers[0].qkv.dense().size(1));
  EXPECT_TRUE(torch::equal(q.weights().embed, dense.weights().embed));
  EXPECT_TRUE(torch::equal(q.weights().lm_head, dense.weights().lm_head));
  EXPECT_TRUE(torch::equal(q.weights().layers[1].post_norm, dense.weights().layers[1].post_norm));
  // The projections are the bf16 weights quantised.
  const Nf4Tensor want = nf4_quantize(dense.weights().layers[1].down.dense(), {64, true});
  EXPECT_TRUE(torch::equal(q.weights().layers[1].down.nf4().packed, want.packed));
  EXPECT_TRUE(torch::equal(q.weights().layers[1].down.nf4().absmax, want.absmax));
}

// Dequantise-then-matmul is the dense forward on the dequantised weights, bit for bit, with and
// without LoRA; the adapters' gradients match too.
TEST(Nf4Model, ForwardAndLoraGradientsEqualTheDequantisedDenseModel) {
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    Phi3Model q = quantized_golden(dtype);
    Phi3Model d = dequantized_copy(q);
    const auto tokens = two_rows(17, q.config().vocab_size, 3);
    EXPECT_TRUE(torch::equal(batch_logits(q, tokens), batch_logits(d, tokens)));
    q.attach_lora(small_lora(), 5);
    d.attach_lora(small_lora(), 5);
    testing::randomize_lora_b(q, 7);
    testing::randomize_lora_b(d, 7);
    const auto lq = batch_logits(q, tokens), ld = batch_logits(d, tokens);
    EXPECT_TRUE(torch::equal(lq, ld));
    lq.logsumexp(-1).mean().backward();
    ld.logsumexp(-1).mean().backward();
    const auto pq = q.lora_parameters(), pd = d.lora_parameters();
    ASSERT_EQ(pq.size(), pd.size());
    for (size_t i = 0; i < pq.size(); ++i) {
      ASSERT_TRUE(pq[i].second.grad().defined()) << pq[i].first;
      EXPECT_LT(max_abs_diff(pq[i].second.grad(), pd[i].second.grad()),
                1e-5 + 1e-3 * pd[i].second.grad().abs().max().item<double>())
          << pq[i].first;
    }
  }
}

TEST(Nf4Model, ActivationCheckpointingGivesTheSameGradients) {
  Phi3Model q = quantized_golden(torch::kFloat);
  q.attach_lora(small_lora(), 5);
  testing::randomize_lora_b(q, 7);
  const auto tokens = two_rows(9, q.config().vocab_size, 4);
  ForwardInput in;
  in.tokens = tokens;
  in.logits = LogitsAt::kAll;
  q.forward(in).logits.logsumexp(-1).mean().backward();
  std::vector<torch::Tensor> plain;
  for (auto& [name, t] : q.lora_parameters()) {
    plain.push_back(t.grad().clone());
    t.mutable_grad().reset();
  }
  in.checkpoint_layers = true;
  q.forward(in).logits.logsumexp(-1).mean().backward();
  const auto params = q.lora_parameters();
  for (size_t i = 0; i < params.size(); ++i)
    EXPECT_TRUE(torch::allclose(params[i].second.grad(), plain[i], 1e-5, 1e-7)) << params[i].first;
}

// QLoRA vs LoRA on the same batch, the same adapters: the quantisation error of the base
// (|w - deq(w)| <= absmax / 2 * max level gap, ~0.15 absmax) moves the loss of the tiny random
// model by at most 2% here (docs/qlora.md: the bound and what it is measured on).
TEST(Nf4Model, QloraLossWithinBoundOfLora) {
  for (auto dtype : {torch::kFloat, torch::kBFloat16}) {
    SCOPED_TRACE(c10::toString(dtype));
    Phi3Model q = quantized_golden(dtype);
    Phi3Model d = golden_model("phi4_tiny", dtype);
    q.attach_lora(small_lora(), 5);
    d.attach_lora(small_lora(), 5);
    testing::randomize_lora_b(q, 7);
    testing::randomize_lora_b(d, 7);
    const auto tokens = two_rows(33, q.config().vocab_size, 11);
    auto loss = [&](const Phi3Model& m) {
      torch::NoGradGuard no_grad;
      auto logits = batch_logits(m, tokens).narrow(1, 0, 32);
      auto targets = tokens.narrow(1, 1, 32);
      return torch::nll_loss(torch::log_softmax(logits, -1).reshape({-1, logits.size(-1)}),
                             targets.reshape(-1))
          .item<double>();
    };
    const double lq = loss(q), ld = loss(d);
    std::cout << "loss QLoRA " << lq << " LoRA " << ld << " rel diff " << std::abs(lq - ld) / ld
              << "\n";
    EXPECT_LT(std::abs(lq - ld), 0.02 * ld);
  }
}

// Merging dequantises: the merged projection is deq(W) + scale B A in the model dtype, and the
// exported directory is a plain dense checkpoint.
TEST(Nf4Model, MergeIntoADequantisedCopyAndExport) {
  Phi3Model q = quantized_golden(torch::kBFloat16);
  q.attach_lora(small_lora({"qkv_proj", "down_proj"}), 5);
  testing::randomize_lora_b(q, 7);
  const auto tokens = two_rows(9, q.config().vocab_size, 2);
  const auto adapted = batch_logits(q, tokens);
  const torch::Tensor deq = q.weights().layers[0].qkv.dequantized();
  const LoraAdapter a = q.weights().layers[0].lora.qkv;
  q.merge_lora();
  EXPECT_FALSE(q.weights().layers[0].qkv.quantized());
  EXPECT_TRUE(q.weights().layers[0].o.quantized());  // not a target: still NF4
  EXPECT_TRUE(
      torch::equal(q.weights().layers[0].qkv.dense(),
                   (deq.to(torch::kFloat) + torch::mm(a.b, a.a) * 2.0).to(torch::kBFloat16)));
  EXPECT_LT(max_abs_diff(batch_logits(q, tokens), adapted),
            0.05 * adapted.abs().max().item<double>());
  testing::TempDir dir;
  save_model_dir(dir.path(), q);
  const Phi3Model back = Phi3Model::load(dir.path(), torch::kBFloat16, torch::kCPU);
  EXPECT_FALSE(back.quantized());
  EXPECT_TRUE(
      torch::equal(back.weights().layers[0].o.dense(), q.weights().layers[0].o.dequantized()));
  EXPECT_TRUE(torch::equal(batch_logits(back, tokens), batch_logits(q, tokens)));
}

TEST(Nf4Model, ToKeepsTheStorage) {
  const Phi3Model q = quantized_golden(torch::kBFloat16);
  const Phi3Model f = q.to(torch::kFloat, torch::kCPU);
  EXPECT_TRUE(f.quantized());
  EXPECT_EQ(f.weights().layers[0].gate_up.dtype(), torch::kFloat);
  EXPECT_TRUE(torch::equal(f.weights().layers[0].gate_up.dequantized(),
                           q.weights().layers[0].gate_up.nf4().packed.defined()
                               ? nf4_dequantize(q.weights().layers[0].gate_up.nf4(), torch::kFloat)
                               : torch::Tensor()));
}

}  // namespace
}  // namespace align
