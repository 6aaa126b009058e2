// Decode attention over the paged KV cache as CUDA kernels, Torch-free: raw pointers, params
// structs and a stream. Flash-decoding: a "partials" kernel splits each KV sequence into chunks
// of keys_per_split keys and writes, per (query row, head, slot), the attention output normalised
// within that chunk and its log-sum-exp (online softmax in fp32); a "merge" kernel combines the
// slots of a row by log-sum-exp:
//   out = sum_s exp(lse_s - M) o_s / sum_s exp(lse_s - M),   M = max_s lse_s.
// The same partials kernel serves the plain decode (one KV sequence per row) and the shared-prefix
// cascade (one KV sequence per group, read once for all the group's query rows, then one suffix
// sequence per row), each pass writing its own range of slots.
//
// KV layout: k_cache, v_cache [num_pages, page_size, Hkv, D] T, contiguous. Key i of sequence s
// sits in page pages[s * pages_stride + i / page_size] at slot i % page_size; its position (for
// the sliding window) is key_pos_offset[s] + i. Query head j reads KV head j / (H / Hkv).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/kernel_support.h"  // kernels::DType

namespace align::kernels {

// Head dims with a compiled kernel.
bool paged_attention_supports_head_dim(int head_dim);

struct PagedAttentionPartialsParams {
  const void* q = nullptr;  // [B, H, D] T; D contiguous
  int64_t q_row_stride = 0;
  int64_t q_head_stride = 0;
  const void* k_cache = nullptr;  // [num_pages, page_size, Hkv, D] T, contiguous
  const void* v_cache = nullptr;  // same
  int page_size = 0;
  int num_heads = 0;     // H
  int num_kv_heads = 0;  // Hkv; H % Hkv == 0
  int head_dim = 0;      // D

  // The KV sequences: sequence s has lens[s] keys in pages pages[s * pages_stride + ...].
  int num_seqs = 0;
  const int32_t* pages = nullptr;  // [num_seqs, pages_stride]
  int64_t pages_stride = 0;
  const int32_t* lens = nullptr;            // [num_seqs]
  const int32_t* key_pos_offset = nullptr;  // [num_seqs] position of key 0; null means 0

  // The query rows reading sequence s: rows[row_offsets[s] .. row_offsets[s + 1]) (CSR).
  const int32_t* row_offsets = nullptr;  // [num_seqs + 1]
  const int32_t* rows = nullptr;         // [num_rows] row ids b in [0, B)
  int max_rows_per_seq = 0;              // max over s of the row count, sizes the grid
  const int32_t* query_pos = nullptr;    // [B] position of row b's query (for the window)

  float scale = 1.f;
  int sliding_window = 0;  // > 0: keys with query_pos - key_pos >= sliding_window are masked

  // Split-K: block x handles keys [x * keys_per_split, (x + 1) * keys_per_split) and writes slot
  // slot_offset + x. keys_per_split must be a positive multiple of 16.
  int keys_per_split = 0;
  int num_splits = 0;
  int slot_offset = 0;
  int num_slots = 0;
  float* partial_out = nullptr;  // [B, H, num_slots, D] fp32, normalised within the slot
  float* partial_lse = nullptr;  // [B, H, num_slots] fp32; -inf where the slot saw no key
};

struct AttentionMergeParams {
  const float* partial_out = nullptr;  // [B, H, num_slots, D]
  const float* partial_lse = nullptr;  // [B, H, num_slots]
  int num_slots = 0;
  int batch = 0;
  int num_heads = 0;
  int head_dim = 0;
  void* out = nullptr;  // [B, H, D] T, contiguous
};

// Every (row, head, slot in [slot_offset, slot_offset + num_splits)) of every row listed in
// `rows` is written, empty splits included. Enqueues on `stream`; returns the launch status.
cudaError_t launch_paged_attention_partials(const PagedAttentionPartialsParams& params, DType dtype,
                                            cudaStream_t stream);

cudaError_t launch_attention_merge(const AttentionMergeParams& params, DType dtype,
                                   cudaStream_t stream);

}  // namespace align::kernels
