#include "kernels/paged_attention_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

namespace align::kernels {
namespace {

constexpr int kTile = 16;  // keys per tile
constexpr float kNegInf = -std::numeric_limits<float>::infinity();

float bf16_to_float(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof(f));
  return f;
}

uint16_t float_to_bf16(float f) {  // round to nearest even, as torch does
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  if (std::isnan(f)) return 0x7FC0;
  u += 0x7FFF + ((u >> 16) & 1);
  return static_cast<uint16_t>(u >> 16);
}

// `n` values of a cache or q row as fp32.
void load_row(const void* base, int64_t offset, bool bf16, int n, float* out) {
  if (bf16) {
    const uint16_t* src = static_cast<const uint16_t*>(base) + offset;
    for (int i = 0; i < n; ++i)
      out[i] = bf16_to_float(src[i]);
  } else {
    std::memcpy(out, static_cast<const float*>(base) + offset, sizeof(float) * n);
  }
}

int chunks_per_seq(const PagedAttentionPartialsParams& p) {
  const int group = p.num_heads / p.num_kv_heads;
  return (p.max_rows_per_seq * group + kCpuMaxQueries - 1) / kCpuMaxQueries;
}

// Per-thread staging buffers, sized once.
struct Scratch {
  std::vector<float> q, acc, kt, v, m, l;
  std::vector<int> row, head, qpos;
  Scratch()
      : q(kCpuMaxQueries * kCpuMaxHeadDim),
        acc(kCpuMaxQueries * kCpuMaxHeadDim),
        kt(kCpuMaxHeadDim * kTile),
        v(kTile * kCpuMaxHeadDim),
        m(kCpuMaxQueries),
        l(kCpuMaxQueries),
        row(kCpuMaxQueries),
        head(kCpuMaxQueries),
        qpos(kCpuMaxQueries) {}
};

// exp(x) for x <= 0 (x = -inf gives 0) in plain arithmetic the compiler vectorises, where
// std::exp is a scalar call: x = n ln2 + r with |r| <= ln2 / 2, exp(r) by its Taylor polynomial to
// degree 7 (truncation below 2e-8 relative), 2^n put into the exponent bits. Relative error about
// 2 ulp of fp32 (tests/kernels compare the kernel with the reference at 1e-5).
inline float exp_nonpositive(float x) {
  x = std::max(x,
               -87.0f);  // exp(-87) ~ 1.6e-38, the smallest normal float's range; -inf -> 0 below
  const float n = std::nearbyint(x * 1.44269504088896341f);
  const float r = x - n * 0.693359375f + n * 2.12194440e-4f;  // ln2 in two parts (Cody-Waite)
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

// The arithmetic of one tile for one query vector: scores against the transposed tile kt
// [D][kTile], online-softmax update of (m, l), acc = acc * correction + probs . v.
__attribute__((target_clones("avx512f", "avx2", "default"))) void tile_update(
    const float* q, const float* kt, const float* v, int D, int n, const bool* visible, float scale,
    float* m, float* l, float* acc) {
  float s[kTile] = {};
  for (int d = 0; d < D; ++d) {
    const float qd = q[d];
    const float* k = kt + d * kTile;
    for (int j = 0; j < kTile; ++j)
      s[j] += qd * k[j];
  }
  float tile_max = kNegInf;
  for (int j = 0; j < kTile; ++j) {
    s[j] = j < n && visible[j] ? s[j] * scale : kNegInf;
    tile_max = std::max(tile_max, s[j]);
  }
  const float m_new = std::max(*m, tile_max);
  if (m_new == kNegInf) return;  // nothing visible yet
  const float corr = *m == kNegInf ? 0.f : exp_nonpositive(*m - m_new);
  float sum = 0.f;
  for (int j = 0; j < kTile; ++j)
    s[j] = s[j] == kNegInf ? 0.f : exp_nonpositive(s[j] - m_new);
  for (int j = 0; j < kTile; ++j)
    sum += s[j];
  *l = *l * corr + sum;
  *m = m_new;
  for (int d = 0; d < D; ++d)
    acc[d] *= corr;
  for (int j = 0; j < n; ++j) {
    const float pj = s[j];
    const float* vj = v + j * D;
    for (int d = 0; d < D; ++d)
      acc[d] += pj * vj[d];
  }
}

void run_item(const PagedAttentionPartialsParams& p, bool bf16, int64_t item, Scratch& w) {
  const int group = p.num_heads / p.num_kv_heads;
  const int chunks = chunks_per_seq(p);
  int64_t rest = item;
  const int split = static_cast<int>(rest % p.num_splits);
  rest /= p.num_splits;
  const int kv_head = static_cast<int>(rest % p.num_kv_heads);
  rest /= p.num_kv_heads;
  const int chunk = static_cast<int>(rest % chunks);
  const int seq = static_cast<int>(rest / chunks);

  const int row_begin = p.row_offsets[seq];
  const int num_rows = p.row_offsets[seq + 1] - row_begin;
  const int query_begin = chunk * kCpuMaxQueries;
  const int num_queries = std::min(kCpuMaxQueries, num_rows * group - query_begin);
  if (num_queries <= 0) return;
  const int D = p.head_dim;
  const int len = p.lens[seq];
  const int key_begin = split * p.keys_per_split;
  const int key_end = std::min(len, key_begin + p.keys_per_split);
  const int key_pos_offset = p.key_pos_offset != nullptr ? p.key_pos_offset[seq] : 0;
  const int32_t* pages = p.pages + seq * p.pages_stride;

  for (int i = 0; i < num_queries; ++i) {
    const int flat = query_begin + i;
    const int b = p.rows[row_begin + flat / group];
    w.row[i] = b;
    w.head[i] = kv_head * group + flat % group;
    w.qpos[i] = p.query_pos[b];
    w.m[i] = kNegInf;
    w.l[i] = 0.f;
    load_row(p.q, b * p.q_row_stride + w.head[i] * p.q_head_stride, bf16, D, &w.q[i * D]);
    std::fill_n(&w.acc[i * D], D, 0.f);
  }
  float kbuf[kCpuMaxHeadDim];
  bool visible[kTile];
  for (int tile = key_begin; tile < key_end; tile += kTile) {
    const int n = std::min(kTile, key_end - tile);
    for (int j = 0; j < kTile; ++j) {
      if (j < n) {
        const int key = tile + j;
        const int64_t page = pages[key / p.page_size];
        const int64_t off =
            ((page * p.page_size + key % p.page_size) * p.num_kv_heads + kv_head) * D;
        load_row(p.k_cache, off, bf16, D, kbuf);
        load_row(p.v_cache, off, bf16, D, &w.v[j * D]);
      } else {
        std::fill_n(kbuf, D, 0.f);
      }
      for (int d = 0; d < D; ++d)
        w.kt[d * kTile + j] = kbuf[d];
    }
    for (int i = 0; i < num_queries; ++i) {
      for (int j = 0; j < kTile; ++j) {
        const int key_pos = key_pos_offset + tile + j;
        visible[j] = p.sliding_window <= 0 || w.qpos[i] - key_pos < p.sliding_window;
      }
      tile_update(&w.q[i * D], w.kt.data(), w.v.data(), D, n, visible, p.scale, &w.m[i], &w.l[i],
                  &w.acc[i * D]);
    }
  }
  const int slot = p.slot_offset + split;
  for (int i = 0; i < num_queries; ++i) {
    const float l = w.l[i];
    const int64_t base = (static_cast<int64_t>(w.row[i]) * p.num_heads + w.head[i]) * p.num_slots;
    float* out = p.partial_out + (base + slot) * D;
    for (int d = 0; d < D; ++d)
      out[d] = l > 0.f ? w.acc[i * D + d] / l : 0.f;
    p.partial_lse[base + slot] = l > 0.f ? w.m[i] + std::log(l) : kNegInf;
  }
}

}  // namespace

int64_t paged_attention_partials_cpu_items(const PagedAttentionPartialsParams& p) {
  if (p.num_seqs == 0 || p.max_rows_per_seq == 0 || p.num_splits == 0) return 0;
  return static_cast<int64_t>(p.num_seqs) * chunks_per_seq(p) * p.num_kv_heads * p.num_splits;
}

void paged_attention_partials_cpu(const PagedAttentionPartialsParams& p, DType dtype, int64_t begin,
                                  int64_t end) {
  thread_local Scratch scratch;
  for (int64_t item = begin; item < end; ++item)
    run_item(p, dtype == DType::BF16, item, scratch);
}

void attention_merge_cpu(const AttentionMergeParams& p, DType dtype, int64_t begin, int64_t end) {
  const int D = p.head_dim;
  for (int64_t row_head = begin; row_head < end; ++row_head) {
    const float* lse = p.partial_lse + row_head * p.num_slots;
    const float* o = p.partial_out + row_head * p.num_slots * D;
    float m = kNegInf;
    for (int s = 0; s < p.num_slots; ++s)
      m = std::max(m, lse[s]);
    float acc[kCpuMaxHeadDim] = {};
    float denom = 0.f;
    for (int s = 0; s < p.num_slots; ++s) {
      if (lse[s] == kNegInf) continue;
      const float w = std::exp(lse[s] - m);
      denom += w;
      for (int d = 0; d < D; ++d)
        acc[d] += w * o[s * D + d];
    }
    for (int d = 0; d < D; ++d) {
      const float value = denom > 0.f ? acc[d] / denom : 0.f;
      if (dtype == DType::BF16) {
        static_cast<uint16_t*>(p.out)[row_head * D + d] = float_to_bf16(value);
      } else {
        static_cast<float*>(p.out)[row_head * D + d] = value;
      }
    }
  }
}

}  // namespace align::kernels
