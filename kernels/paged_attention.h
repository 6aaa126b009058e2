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
#include "kernels/paged_attention_params.h"

namespace align::kernels {

// Head dims with a compiled kernel.
bool paged_attention_supports_head_dim(int head_dim);

// Every (row, head, slot in [slot_offset, slot_offset + num_splits)) of every row listed in
// `rows` is written, empty splits included. Enqueues on `stream`; returns the launch status.
cudaError_t launch_paged_attention_partials(const PagedAttentionPartialsParams& params, DType dtype,
                                            cudaStream_t stream);

cudaError_t launch_attention_merge(const AttentionMergeParams& params, DType dtype,
                                   cudaStream_t stream);

}  // namespace align::kernels
