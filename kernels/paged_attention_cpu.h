// The CPU twins of the paged decode-attention kernels (kernels/paged_attention.h): the same
// params, the same flash-decoding scheme, reading K/V in place from the pages (no gather, no
// per-call allocation beyond what the caller passes). Torch-free; the op layer
// (paged_attention_op.cc) splits the work items over LibTorch's threads.
//
// Work items of the partials: (sequence, KV head, chunk of up to kCpuMaxQueries query vectors,
// key split). A chunk's query vectors are the (row, head) pairs of the sequence's rows that read
// this KV head, so every key tile is loaded once for a whole GQA group and, for a shared prefix,
// for every row of the group. Per tile of 16 keys: K staged transposed in fp32, scores for each
// query vector, an online-softmax update in fp32, then the probabilities times V. Vectorised for
// AVX-512 and AVX2 where the CPU has them (one build, chosen at load time), plain otherwise.
#pragma once

#include <cstdint>

#include "kernels/kernel_support.h"  // kernels::DType
#include "kernels/paged_attention_params.h"

namespace align::kernels {

constexpr int kCpuMaxQueries = 64;  // query vectors one work item serves
constexpr int kCpuMaxHeadDim = 256;

// Work items of one partials call (0 when there is nothing to do).
int64_t paged_attention_partials_cpu_items(const PagedAttentionPartialsParams& params);

// Runs items [begin, end). Any head dim up to kCpuMaxHeadDim; keys_per_split a positive multiple
// of 16 (as on CUDA).
void paged_attention_partials_cpu(const PagedAttentionPartialsParams& params, DType dtype,
                                  int64_t begin, int64_t end);

// Merges (row, head) pairs [begin, end) of batch * num_heads.
void attention_merge_cpu(const AttentionMergeParams& params, DType dtype, int64_t begin,
                         int64_t end);

}  // namespace align::kernels
