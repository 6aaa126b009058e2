#include <cuda_bf16.h>

#include <cmath>

#include "kernels/device_dtype.cuh"
#include "kernels/paged_attention.h"

namespace align::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kWarps = kThreads / 32;
constexpr int kKeyTile = 16;     // keys staged in shared memory at a time
constexpr int kMaxQueries = 16;  // query vectors (row, head) one block serves

// One block per (split, KV head, sequence x query chunk). The block's query vectors are the
// (row, head) pairs of the sequence's rows whose head reads this KV head, flattened as
// r * G + g and cut into chunks of kMaxQueries; so a GQA group (and, for a shared prefix, every row
// of the group) reads each K/V tile once. Per key tile: stage K and V in fp32, scores for every
// (query, key), an online-softmax update per query (one warp per query), then the output update.
template <typename T, int D>
__global__ void __launch_bounds__(kThreads)
    paged_attention_partials_kernel(PagedAttentionPartialsParams p) {
  const int split = blockIdx.x;
  const int kv_head = blockIdx.y;
  const int chunks_per_seq =
      (p.max_rows_per_seq * (p.num_heads / p.num_kv_heads) + kMaxQueries - 1) / kMaxQueries;
  const int seq = blockIdx.z / chunks_per_seq;
  const int chunk = blockIdx.z % chunks_per_seq;
  const int group = p.num_heads / p.num_kv_heads;
  const int row_begin = p.row_offsets[seq];
  const int num_rows = p.row_offsets[seq + 1] - row_begin;
  const int query_begin = chunk * kMaxQueries;
  const int num_queries = min(kMaxQueries, num_rows * group - query_begin);
  if (num_queries <= 0) return;

  const int len = p.lens[seq];
  const int key_begin = split * p.keys_per_split;
  const int key_end = min(len, key_begin + p.keys_per_split);
  const int key_pos_offset = p.key_pos_offset != nullptr ? p.key_pos_offset[seq] : 0;
  const int32_t* pages = p.pages + seq * p.pages_stride;
  const T* q = static_cast<const T*>(p.q);
  const T* k_cache = static_cast<const T*>(p.k_cache);
  const T* v_cache = static_cast<const T*>(p.v_cache);

  __shared__ float q_s[kMaxQueries][D];
  __shared__ float acc_s[kMaxQueries][D];
  __shared__ float k_s[kKeyTile][D + 1];  // +1: the score loop walks keys across lanes
  __shared__ float v_s[kKeyTile][D + 1];
  __shared__ float p_s[kMaxQueries][kKeyTile];  // scores, then probabilities
  __shared__ float m_s[kMaxQueries], l_s[kMaxQueries], corr_s[kMaxQueries];
  __shared__ int row_s[kMaxQueries], head_s[kMaxQueries], qpos_s[kMaxQueries];

  const int tid = threadIdx.x;
  if (tid < num_queries) {
    const int flat = query_begin + tid;
    const int b = p.rows[row_begin + flat / group];
    row_s[tid] = b;
    head_s[tid] = kv_head * group + flat % group;
    qpos_s[tid] = p.query_pos[b];
    m_s[tid] = -INFINITY;
    l_s[tid] = 0.f;
  }
  __syncthreads();
  for (int idx = tid; idx < num_queries * D; idx += kThreads) {
    const int i = idx / D, d = idx % D;
    q_s[i][d] = to_float(q[row_s[i] * p.q_row_stride + head_s[i] * p.q_head_stride + d]);
    acc_s[i][d] = 0.f;
  }

  for (int tile = key_begin; tile < key_end; tile += kKeyTile) {
    const int n = min(kKeyTile, key_end - tile);
    __syncthreads();  // the previous tile's readers are done with k_s, v_s, p_s
    for (int idx = tid; idx < kKeyTile * D; idx += kThreads) {
      const int j = idx / D, d = idx % D;
      float kv = 0.f, vv = 0.f;
      if (j < n) {
        const int key = tile + j;
        const int64_t page = pages[key / p.page_size];
        const int64_t off =
            ((page * p.page_size + key % p.page_size) * p.num_kv_heads + kv_head) * D + d;
        kv = to_float(k_cache[off]);
        vv = to_float(v_cache[off]);
      }
      k_s[j][d] = kv;
      v_s[j][d] = vv;
    }
    __syncthreads();
    for (int idx = tid; idx < num_queries * kKeyTile; idx += kThreads) {
      const int i = idx / kKeyTile, j = idx % kKeyTile;
      float s = -INFINITY;
      const int key_pos = key_pos_offset + tile + j;
      if (j < n && (p.sliding_window <= 0 || qpos_s[i] - key_pos < p.sliding_window)) {
        float dot = 0.f;
#pragma unroll 8
        for (int d = 0; d < D; ++d)
          dot += q_s[i][d] * k_s[j][d];
        s = dot * p.scale;
      }
      p_s[i][j] = s;
    }
    __syncthreads();
    const int warp = tid / 32, lane = tid % 32;
    for (int i = warp; i < num_queries; i += kWarps) {
      const float s = lane < kKeyTile ? p_s[i][lane] : -INFINITY;
      float tile_max = s;
      for (int offset = 16; offset > 0; offset /= 2)
        tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffff, tile_max, offset));
      const float m_old = m_s[i];
      const float m_new = fmaxf(m_old, tile_max);
      const float prob = m_new == -INFINITY ? 0.f : expf(s - m_new);
      float sum = prob;
      for (int offset = 16; offset > 0; offset /= 2)
        sum += __shfl_xor_sync(0xffffffff, sum, offset);
      if (lane < kKeyTile) p_s[i][lane] = prob;
      if (lane == 0) {
        const float corr = m_old == -INFINITY ? 0.f : expf(m_old - m_new);
        l_s[i] = l_s[i] * corr + sum;
        m_s[i] = m_new;
        corr_s[i] = corr;
      }
    }
    __syncthreads();
    for (int idx = tid; idx < num_queries * D; idx += kThreads) {
      const int i = idx / D, d = idx % D;
      float a = acc_s[i][d] * corr_s[i];
      for (int j = 0; j < n; ++j)
        a += p_s[i][j] * v_s[j][d];
      acc_s[i][d] = a;
    }
  }
  __syncthreads();

  const int slot = p.slot_offset + split;
  for (int idx = tid; idx < num_queries * D; idx += kThreads) {
    const int i = idx / D, d = idx % D;
    const float l = l_s[i];
    const int64_t base = (static_cast<int64_t>(row_s[i]) * p.num_heads + head_s[i]) * p.num_slots;
    p.partial_out[(base + slot) * D + d] = l > 0.f ? acc_s[i][d] / l : 0.f;
  }
  if (tid < num_queries) {
    const float l = l_s[tid];
    const int64_t base =
        (static_cast<int64_t>(row_s[tid]) * p.num_heads + head_s[tid]) * p.num_slots;
    p.partial_lse[base + slot] = l > 0.f ? m_s[tid] + logf(l) : -INFINITY;
  }
}

// One block per (row, head): weights exp(lse_s - M) over the slots, then the weighted mean.
template <typename T>
__global__ void attention_merge_kernel(AttentionMergeParams p) {
  const int64_t row_head = blockIdx.x;
  const float* lse = p.partial_lse + row_head * p.num_slots;
  const float* o = p.partial_out + row_head * p.num_slots * p.head_dim;
  float m = -INFINITY;
  for (int s = 0; s < p.num_slots; ++s)
    m = fmaxf(m, lse[s]);
  float denom = 0.f;
  for (int s = 0; s < p.num_slots; ++s)
    if (lse[s] != -INFINITY) denom += expf(lse[s] - m);
  T* out = static_cast<T*>(p.out) + row_head * p.head_dim;
  for (int d = threadIdx.x; d < p.head_dim; d += blockDim.x) {
    float a = 0.f;
    for (int s = 0; s < p.num_slots; ++s)
      if (lse[s] != -INFINITY) a += expf(lse[s] - m) * o[s * p.head_dim + d];
    out[d] = from_float<T>(denom > 0.f ? a / denom : 0.f);
  }
}

template <typename T>
cudaError_t launch_partials_typed(const PagedAttentionPartialsParams& p, cudaStream_t stream) {
  const int group = p.num_heads / p.num_kv_heads;
  const int chunks = (p.max_rows_per_seq * group + kMaxQueries - 1) / kMaxQueries;
  const dim3 grid(static_cast<unsigned>(p.num_splits), static_cast<unsigned>(p.num_kv_heads),
                  static_cast<unsigned>(p.num_seqs * chunks));
  switch (p.head_dim) {
    case 64:
      paged_attention_partials_kernel<T, 64><<<grid, kThreads, 0, stream>>>(p);
      break;
    case 80:
      paged_attention_partials_kernel<T, 80><<<grid, kThreads, 0, stream>>>(p);
      break;
    case 96:
      paged_attention_partials_kernel<T, 96><<<grid, kThreads, 0, stream>>>(p);
      break;
    case 128:
      paged_attention_partials_kernel<T, 128><<<grid, kThreads, 0, stream>>>(p);
      break;
    default:
      return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace

bool paged_attention_supports_head_dim(int head_dim) {
  return head_dim == 64 || head_dim == 80 || head_dim == 96 || head_dim == 128;
}

cudaError_t launch_paged_attention_partials(const PagedAttentionPartialsParams& params, DType dtype,
                                            cudaStream_t stream) {
  if (params.num_seqs == 0 || params.max_rows_per_seq == 0 || params.num_splits == 0) {
    return cudaSuccess;
  }
  if (params.keys_per_split <= 0 || params.keys_per_split % kKeyTile != 0 ||
      params.num_kv_heads <= 0 || params.num_heads % params.num_kv_heads != 0) {
    return cudaErrorInvalidValue;
  }
  return dtype == DType::F32 ? launch_partials_typed<float>(params, stream)
                             : launch_partials_typed<__nv_bfloat16>(params, stream);
}

cudaError_t launch_attention_merge(const AttentionMergeParams& params, DType dtype,
                                   cudaStream_t stream) {
  if (params.batch == 0 || params.num_heads == 0) return cudaSuccess;
  const dim3 grid(static_cast<unsigned>(params.batch * params.num_heads));
  if (dtype == DType::F32) {
    attention_merge_kernel<float><<<grid, kThreads, 0, stream>>>(params);
  } else {
    attention_merge_kernel<__nv_bfloat16><<<grid, kThreads, 0, stream>>>(params);
  }
  return cudaGetLastError();
}

}  // namespace align::kernels
