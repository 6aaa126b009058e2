// Activation checkpointing (Chen et al. 2016, arXiv 1604.06174) for LibTorch, which has no
// torch.utils.checkpoint: the forward runs `fn` without building a graph and keeps only its input;
// the backward runs `fn` again with grad enabled and back-propagates through the recomputed graph.
// Memory per checkpointed block drops from all its activations to its input, for one extra
// forward of the block in backward (PyTorch's reentrant checkpoint, use_reentrant=True).
//
// Random ops inside `fn` (LoRA dropout) draw the same values in the recompute: the default
// generators of the CPU and of the input's CUDA device are saved before the forward, set again for
// the recompute, and put back afterwards, so the surrounding random stream is unaffected.
#pragma once

#include <torch/types.h>

#include <functional>
#include <vector>

namespace align {

// input [...] -> output [...]. Must be deterministic given the generator state, read no tensor
// requiring grad other than `input` and `params`, and stay valid until the backward has run (it is
// kept by the graph, so capture what it needs by value).
using CheckpointFn = std::function<torch::Tensor(const torch::Tensor& input)>;

// Returns fn(input). When grad mode is on and `input` or one of `params` requires grad, the result
// carries a graph node that recomputes fn in backward and returns the gradients of `input` and of
// every param requiring grad; otherwise fn runs plainly. `params` lists every tensor fn reads that
// may require grad (weights, LoRA A and B); the others may be left out.
torch::Tensor checkpoint(CheckpointFn fn, const torch::Tensor& input,
                         const std::vector<torch::Tensor>& params, bool preserve_rng = true);

}  // namespace align
