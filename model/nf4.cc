#include "model/nf4.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"

namespace align {
namespace {

// Rows of full blocks quantised per step: bounds the fp32 temporaries to ~64 MiB.
constexpr int64_t kChunkElements = int64_t{1} << 24;

torch::Tensor level_midpoints() {
  const auto& l = nf4_levels();
  auto levels = at::tensor(std::vector<float>(l.begin(), l.end()), at::kFloat);
  return (levels.narrow(0, 0, 15) + levels.narrow(0, 1, 15)) / 2;  // fp32, as bitsandbytes
}

// Nearest entry of the ascending `code` [256] for each x [m] (ties to the lower index): uint8.
torch::Tensor nearest_code(const torch::Tensor& x, const torch::Tensor& code) {
  auto mid = (code.narrow(0, 0, 255) + code.narrow(0, 1, 255)) / 2;
  // bucketize(right=false): the index of the first midpoint >= x, i.e. a tie goes down.
  return at::bucketize(x, mid, /*out_int32=*/true).to(at::kByte);
}

}  // namespace

torch::Tensor dynamic_map_signed() {
  // bitsandbytes/functional.py create_dynamic_map: for exponent i = 0..6, 2^i + 1 points of
  // linspace(0.1, 1) give 2^i interval means, scaled by 10^(i - 6), both signs; then 0 and 1,
  // sorted (one zero is left over as padding: 2 * 127 + 2 = 256 entries).
  std::vector<float> data;
  const int max_exponent_bits = 7, non_sign_bits = 7;
  for (int i = 0; i < max_exponent_bits; ++i) {
    const int64_t items = (int64_t{1} << (i + non_sign_bits - max_exponent_bits)) + 1;
    auto bounds = at::linspace(0.1, 1, items, at::kFloat);
    auto means = (bounds.narrow(0, 0, items - 1) + bounds.narrow(0, 1, items - 1)) / 2.0;
    // Python: (10 ** (-(max_exponent_bits - 1) + i)) * means, a Python float times an fp32
    // tensor: the scale rounded to fp32, then an fp32 product; tolist() widens exactly.
    const double scale = std::pow(10.0, -(max_exponent_bits - 1) + i);
    auto pos = (means * scale).contiguous();
    auto neg = (means * -scale).contiguous();
    for (int64_t k = 0; k < items - 1; ++k)
      data.push_back(pos.data_ptr<float>()[k]);
    for (int64_t k = 0; k < items - 1; ++k)
      data.push_back(neg.data_ptr<float>()[k]);
  }
  data.push_back(0.0f);
  data.push_back(1.0f);
  data.resize(256, 0.0f);
  std::sort(data.begin(), data.end());
  return at::tensor(data, at::kFloat);
}

std::optional<Nf4Options> quantize_options(QuantizeChoice choice, bool double_quant) {
  if (choice == QuantizeChoice::kNone) return std::nullopt;
  Nf4Options o;
  o.double_quant = double_quant;
  return o;
}

Nf4Tensor nf4_quantize(const torch::Tensor& weight, const Nf4Options& options) {
  const int64_t bs = options.blocksize;
  if (bs <= 0 || bs % 2 != 0) {
    throw InputError("nf4_quantize: blocksize must be positive and even, got " +
                     std::to_string(bs));
  }
  torch::NoGradGuard no_grad;
  auto flat = weight.detach().to(at::kCPU).reshape(-1);
  const int64_t n = flat.numel();
  const int64_t full = n - n % bs, blocks = (n + bs - 1) / bs;
  Nf4Tensor q;
  q.shape = weight.sizes().vec();
  q.blocksize = bs;
  q.packed = at::empty({(n + 1) / 2}, at::kByte);
  auto absmax = at::empty({blocks}, at::kFloat);
  const auto mid = level_midpoints();

  // Codes of `count` elements from `begin` (count even, or the tail), into packed[begin / 2 ...].
  auto emit = [&](const torch::Tensor& scaled, int64_t begin) {
    auto s = scaled.reshape(-1);
    if (s.numel() % 2) s = at::cat({s, at::zeros({1}, s.options())});
    auto c = at::bucketize(s, mid, /*out_int32=*/true).to(at::kByte).view({-1, 2});
    auto byte = c.select(1, 0).bitwise_left_shift(4).bitwise_or(c.select(1, 1));
    q.packed.narrow(0, begin / 2, byte.numel()).copy_(byte);
  };
  const int64_t rows_per_chunk = std::max<int64_t>(1, kChunkElements / bs);
  for (int64_t row = 0; row < full / bs; row += rows_per_chunk) {
    const int64_t rows = std::min(rows_per_chunk, full / bs - row);
    auto a = flat.narrow(0, row * bs, rows * bs).to(at::kFloat).view({rows, bs});
    auto am = std::get<0>(a.abs().max(-1));  // [rows]
    absmax.narrow(0, row, rows).copy_(am);
    auto inv = 1.0 / am.clamp_min(1e-38).view({rows, 1});  // fp32
    emit((a * inv).clamp(-1, 1), row * bs);
  }
  if (full < n) {
    auto a = flat.narrow(0, full, n - full).to(at::kFloat);
    auto am = a.abs().max();
    absmax.narrow(0, blocks - 1, 1).copy_(am.view({1}));
    emit((a / am.clamp_min(1e-38)).clamp(-1, 1), full);
  }
  if (!at::isfinite(absmax).all().item<bool>()) {
    throw InputError("nf4_quantize: the weight holds non-finite values");
  }
  if (!options.double_quant) {
    q.absmax = absmax;
    return q;
  }
  // quantize_blockwise(absmax - offset, code=dynamic map, blocksize=256).
  auto offset = absmax.mean();  // fp32, as torch.mean
  q.offset = offset.item<float>();
  auto centred = absmax - offset;
  const int64_t groups = (blocks + 255) / 256;
  q.absmax2 = at::empty({groups}, at::kFloat);
  q.absmax = at::empty({blocks}, at::kByte);
  q.code2 = dynamic_map_signed();
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t begin = g * 256, count = std::min<int64_t>(256, blocks - begin);
    auto x = centred.narrow(0, begin, count);
    auto m = x.abs().max();
    q.absmax2.narrow(0, g, 1).copy_(m.view({1}));
    // All equal (e.g. a single block): every absmax is the offset; code the zero, not 0 / 0.
    auto scaled = m.item<float>() > 0 ? x / m : at::zeros_like(x);
    q.absmax.narrow(0, begin, count).copy_(nearest_code(scaled, q.code2));
  }
  return q;
}

}  // namespace align
