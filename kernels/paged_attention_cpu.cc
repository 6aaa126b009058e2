#include "kernels/paged_attention_cpu.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "kernels/cpu_math.h"

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

int chunks_per_seq(const PagedAttentionPartialsParams& p) {
  const int group = p.num_heads / p.num_kv_heads;
  return (p.max_rows_per_seq * group + kCpuMaxQueries - 1) / kCpuMaxQueries;
}

static_assert(sizeof(vfloat) == kTile * sizeof(float), "one vector holds one tile's keys");

constexpr int kBlock = 4;             // query vectors whose scores one pass computes
constexpr int kDimGroup = 4 * kTile;  // head dims per register group of the P.V pass
constexpr int kMaxPadded = (kCpuMaxHeadDim + kDimGroup - 1) / kDimGroup * kDimGroup;
constexpr int kMaxBlocked = (kCpuMaxQueries + kBlock - 1) / kBlock * kBlock;

int padded_dim(int head_dim) {
  return (head_dim + kDimGroup - 1) / kDimGroup * kDimGroup;
}

// Per-thread staging buffers, sized once and aligned for the vector loads.
struct Scratch {
  alignas(64) float q[kMaxBlocked * kMaxPadded];    // query vectors, fp32, zero-padded to Dp
  alignas(64) float acc[kMaxBlocked * kMaxPadded];  // their running outputs
  alignas(64) float kt[kCpuMaxHeadDim * kTile];     // the tile's keys transposed: [d][key]
  alignas(64) float v[kTile * kMaxPadded];          // the tile's values: [key][Dp]
  alignas(64) float probs[kBlock * kTile];          // one block's probabilities of the tile
  float m[kMaxBlocked], l[kMaxBlocked], corr[kBlock];
  int row[kMaxBlocked], head[kMaxBlocked], qpos[kMaxBlocked];
};

// A row of 16 floats at any 4-byte alignment (cache rows, query rows).
using vfloat_u = float __attribute__((vector_size(64), aligned(4)));
using vbf16_u = uint16_t __attribute__((vector_size(32), aligned(2)));

// Transposes 16 vectors in place: after it, rows[d][j] is what rows[j][d] was. Four stages, each
// swapping one bit of the row index with the same bit of the column index through two-source
// shuffles (one vpermt2ps each on AVX-512).
inline void transpose16(vfloat* rows) {
  static constexpr vint kKeep[4] = {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30},
                                    {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
                                    {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
                                    {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}};
  static constexpr vint kSwap[4] = {{1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31},
                                    {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31},
                                    {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
                                    {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}};
  for (int b = 0; b < 4; ++b) {
    const int bit = 1 << b;
    for (int j = 0; j < kTile; ++j) {
      if (j & bit) continue;
      const vfloat x = rows[j], y = rows[j | bit];
      rows[j] = __builtin_shuffle(x, y, kKeep[b]);
      rows[j | bit] = __builtin_shuffle(x, y, kSwap[b]);
    }
  }
}

// Stages the tile's keys j < n transposed into kt[d][j] (fp32, zeros for j >= n) and points
// values[j] at each key's value row: in place in the cache for fp32 rows a whole number of
// register groups long, else a zero-padded fp32 copy in w.v.
__attribute__((target_clones("avx512f", "avx2", "default"))) void stage_tile(
    const PagedAttentionPartialsParams& p, bool bf16, int kv_head, int tile, int n,
    const int32_t* pages, int Dp, Scratch& w, const float** values) {
  const int D = p.head_dim;
  const bool in_place = !bf16 && D == Dp;
  int64_t offsets[kTile];
  for (int j = 0; j < n; ++j) {
    const int key = tile + j;
    const int64_t page = pages[key / p.page_size];
    offsets[j] = ((page * p.page_size + key % p.page_size) * p.num_kv_heads + kv_head) * D;
  }
  const vfloat zero = {};
  vfloat block[kTile];
  for (int d0 = 0; d0 < D; d0 += kTile) {
    const int width = std::min(kTile, D - d0);
    for (int j = 0; j < kTile; ++j) {
      if (j >= n) {
        block[j] = zero;
      } else if (width < kTile) {  // the last dims of a head dim that is not a multiple of 16
        float part[kTile] = {};
        for (int d = 0; d < width; ++d) {
          part[d] =
              bf16 ? bf16_to_float(static_cast<const uint16_t*>(p.k_cache)[offsets[j] + d0 + d])
                   : static_cast<const float*>(p.k_cache)[offsets[j] + d0 + d];
        }
        std::memcpy(&block[j], part, sizeof(part));
      } else if (bf16) {
        const vbf16_u raw = *reinterpret_cast<const vbf16_u*>(
            static_cast<const uint16_t*>(p.k_cache) + offsets[j] + d0);
        block[j] = __builtin_bit_cast(vfloat, __builtin_convertvector(raw, vint) << 16);
      } else {
        block[j] = *reinterpret_cast<const vfloat_u*>(static_cast<const float*>(p.k_cache) +
                                                      offsets[j] + d0);
      }
    }
    transpose16(block);
    vfloat* kt = reinterpret_cast<vfloat*>(w.kt) + d0;
    for (int d = 0; d < width; ++d)
      kt[d] = block[d];
  }
  for (int j = 0; j < kTile; ++j) {
    if (j < n && in_place) {
      values[j] = static_cast<const float*>(p.v_cache) + offsets[j];
      continue;
    }
    float* v = w.v + j * Dp;
    values[j] = v;
    if (j >= n) {
      std::fill_n(v, Dp, 0.f);
    } else if (bf16) {
      const uint16_t* src = static_cast<const uint16_t*>(p.v_cache) + offsets[j];
      for (int d = 0; d < D; ++d)
        v[d] = bf16_to_float(src[d]);
    } else {
      std::memcpy(v, static_cast<const float*>(p.v_cache) + offsets[j], sizeof(float) * D);
    }
    std::fill(v + D, v + Dp, 0.f);
  }
}

// One work item. Per tile of 16 keys (staged once for all the item's query vectors), blocks of
// kBlock query vectors: their scores (each a sum over d in two interleaved halves, so the
// multiply-adds of a block form 8 independent chains), the online-softmax update in fp32, then
// acc = acc * correction + probs . v with each query's outputs held in registers over the tile.
__attribute__((target_clones("avx512f", "avx2", "default"))) void run_item(
    const PagedAttentionPartialsParams& p, bool bf16, int64_t item, Scratch& w) {
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
  const int Dp = padded_dim(D);
  const int len = p.lens[seq];
  const int split_begin = split * p.keys_per_split;
  const int split_end = std::min(len, split_begin + p.keys_per_split);
  const int key_pos_offset = p.key_pos_offset != nullptr ? p.key_pos_offset[seq] : 0;
  const int32_t* pages = p.pages + seq * p.pages_stride;

  const int blocked = (num_queries + kBlock - 1) / kBlock * kBlock;
  for (int i = 0; i < blocked; ++i) {
    float* q = w.q + i * Dp;
    std::fill_n(q, Dp, 0.f);
    std::fill_n(w.acc + i * Dp, Dp, 0.f);
    w.m[i] = kNegInf;
    w.l[i] = 0.f;
    if (i >= num_queries) continue;  // padding of the last block: zero queries, never written out
    const int flat = query_begin + i;
    const int b = p.rows[row_begin + flat / group];
    w.row[i] = b;
    w.head[i] = kv_head * group + flat % group;
    w.qpos[i] = p.query_pos[b];
    const int64_t offset = b * p.q_row_stride + w.head[i] * p.q_head_stride;
    if (bf16) {
      const uint16_t* src = static_cast<const uint16_t*>(p.q) + offset;
      for (int d = 0; d < D; ++d)
        q[d] = bf16_to_float(src[d]);
    } else {
      std::memcpy(q, static_cast<const float*>(p.q) + offset, sizeof(float) * D);
    }
  }

  // Keys no query of the item sees are skipped whole tiles at a time (past the last query's
  // position, causal; before the first one's window): a tile with no visible key leaves the
  // softmax state exactly as it was, so the result is the same.
  const int max_qpos = *std::max_element(w.qpos, w.qpos + num_queries);
  const int min_qpos = *std::min_element(w.qpos, w.qpos + num_queries);
  const int key_end = std::min(split_end, max_qpos - key_pos_offset + 1);
  int key_begin = split_begin;
  if (p.sliding_window > 0) {
    const int first_seen = min_qpos - p.sliding_window + 1 - key_pos_offset;
    if (first_seen > split_begin) key_begin += (first_seen - split_begin) / kTile * kTile;
  }

  const vfloat* kt = reinterpret_cast<const vfloat*>(w.kt);
  const vfloat zero = {};
  const vfloat neg_inf = zero + kNegInf;
  vint lane;
  for (int j = 0; j < kTile; ++j)
    lane[j] = j;
  for (int tile = key_begin; tile < key_end; tile += kTile) {
    const int n = std::min(kTile, key_end - tile);
    const float* values[kTile];
    stage_tile(p, bf16, kv_head, tile, n, pages, Dp, w, values);
    const vint past_end = lane >= n;  // lanes with no key
    for (int qb = 0; qb < blocked; qb += kBlock) {
      // Scores of kBlock query vectors against the tile's keys.
      vfloat s[kBlock][2] = {};
      const float* q = w.q + qb * Dp;
      int d = 0;
      for (; d + 1 < D; d += 2) {
        for (int a = 0; a < kBlock; ++a) {
          s[a][0] += q[a * Dp + d] * kt[d];
          s[a][1] += q[a * Dp + d + 1] * kt[d + 1];
        }
      }
      for (; d < D; ++d) {
        for (int a = 0; a < kBlock; ++a)
          s[a][0] += q[a * Dp + d] * kt[d];
      }
      // Online softmax per query vector.
      for (int a = 0; a < kBlock; ++a) {
        const int i = qb + a;
        vfloat score = (s[a][0] + s[a][1]) * p.scale;
        // key_pos = key_pos_offset + tile + lane: causal, then the window.
        vint hidden = past_end | ((key_pos_offset + tile + lane) > w.qpos[i]);
        if (p.sliding_window > 0) {
          hidden |= (w.qpos[i] - key_pos_offset - tile - lane) >= p.sliding_window;
        }
        score = hidden ? neg_inf : score;
        float tile_max = kNegInf;
        for (int j = 0; j < kTile; ++j)
          tile_max = std::max(tile_max, score[j]);
        const float m_new = std::max(w.m[i], tile_max);
        vfloat* probs = reinterpret_cast<vfloat*>(w.probs) + a;
        if (m_new == kNegInf) {  // nothing visible yet
          *probs = zero;
          w.corr[a] = 1.f;
          continue;
        }
        float corr = w.m[i] - m_new;
        exp_nonpositive(corr);
        w.corr[a] = w.m[i] == kNegInf ? 0.f : corr;
        vfloat e = score - m_new;
        exp_nonpositive(e);
        e = hidden ? zero : e;
        *probs = e;
        float sum = 0.f;
        for (int j = 0; j < kTile; ++j)
          sum += e[j];
        w.l[i] = w.l[i] * w.corr[a] + sum;
        w.m[i] = m_new;
      }
      // acc = acc * corr + probs . v, kDimGroup dims at a time in registers.
      for (int g = 0; g < Dp; g += kDimGroup) {
        vfloat o[kBlock][4];
        for (int a = 0; a < kBlock; ++a) {
          const vfloat* acc = reinterpret_cast<const vfloat*>(w.acc + (qb + a) * Dp + g);
          for (int c = 0; c < 4; ++c)
            o[a][c] = acc[c] * w.corr[a];
        }
        for (int j = 0; j < n; ++j) {
          const vfloat_u* v = reinterpret_cast<const vfloat_u*>(values[j] + g);
          for (int a = 0; a < kBlock; ++a) {
            const float pj = w.probs[a * kTile + j];
            for (int c = 0; c < 4; ++c)
              o[a][c] += pj * v[c];
          }
        }
        for (int a = 0; a < kBlock; ++a) {
          vfloat* acc = reinterpret_cast<vfloat*>(w.acc + (qb + a) * Dp + g);
          for (int c = 0; c < 4; ++c)
            acc[c] = o[a][c];
        }
      }
    }
  }
  const int slot = p.slot_offset + split;
  for (int i = 0; i < num_queries; ++i) {
    const float l = w.l[i];
    const int64_t base = (static_cast<int64_t>(w.row[i]) * p.num_heads + w.head[i]) * p.num_slots;
    float* out = p.partial_out + (base + slot) * D;
    for (int d = 0; d < D; ++d)
      out[d] = l > 0.f ? w.acc[i * Dp + d] / l : 0.f;
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
  thread_local const std::unique_ptr<Scratch> scratch = std::make_unique<Scratch>();
  for (int64_t item = begin; item < end; ++item)
    run_item(p, dtype == DType::BF16, item, *scratch);
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
