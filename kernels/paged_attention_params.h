// The parameters of the paged decode-attention kernels (flash-decoding partials, then a
// log-sum-exp merge; kernels/paged_attention.h describes the scheme and the KV layout), shared by
// the CUDA kernels (paged_attention.cu) and their CPU twins (paged_attention_cpu.h). Plain structs
// of raw pointers: no Torch, no CUDA.
#pragma once

#include <cstdint>

namespace align::kernels {

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
  // [B] position of row b's query: keys past it are masked (causal; the CPU kernels, which also
  // run prefill chunks; the CUDA kernels serve decode rows only, whose keys never are) and so are
  // keys outside the window.
  const int32_t* query_pos = nullptr;

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

}  // namespace align::kernels
