#!/usr/bin/env python3
"""Writes the model golden files under tests/golden/model/ (dev-only; tests never run it).

Two tiny random Phi3ForCausalLM checkpoints, saved by transformers' save_pretrained, and what
transformers computes from them with attn_implementation="eager" (and, for bf16, also "sdpa"):

  phi4_tiny/   Phi-4-shaped: untied lm_head, full rotary, default RoPE with theta 250000, GQA 4:2,
               bf16 weights, sharded (index + several model-0000k-of-0000n.safetensors).
  mini_tiny/   Phi-4-mini-shaped: tied embeddings (no lm_head.weight), partial_rotary_factor 0.75,
               longrope (synthetic short/long factors, original_max_position_embeddings 32,
               max_position_embeddings 128), GQA 6:2, sliding_window 20, single model.safetensors.

  <name>.json  {"sequences": [{"tokens", "logprobs_fp32", "logprobs_bf16", "logprobs_bf16_sdpa"}],
                "greedy": [{"prompt", "fp32", "bf16"}],
                "crossing": [{"prompt", "fp32": {"tokens", "logprobs", "full_logprobs"},
                              "bf16": {..., "full_logprobs_sdpa"}}]}   (mini_tiny only)
  logprobs[i] = log p(tokens[i] | tokens[:i]) for i >= 1 (log-softmax in fp32 of the logits);
  greedy: generate(do_sample=False) continuations, checked against a naive argmax loop that runs
  the full forward on the whole sequence at every step.
  crossing: greedy continuations whose sequence crosses original_max_position_embeddings (32)
  while generate() decodes with its DynamicCache: "tokens" as in greedy, "logprobs[i]" the
  log-softmax (fp32) of generate's own step-i logits (output_logits) at tokens[i], and
  "full_logprobs[i]" the same token's log-prob from one forward over prompt + tokens (teacher
  forcing, what scoring computes). Both differ where the step ran with the short factors and the
  full sequence with the long ones (docs/longrope.md); the script checks that generate's step
  logits equal a forward over the sequence so far (transformers re-computes the cache at the
  switch) before writing them.

Weights are HF-initialised and then re-drawn with larger scales (seeded) so that attention is far
from uniform and the log-probs vary: with initializer_range 0.02 a 64-wide model predicts an almost
flat distribution and parity would test little. Norm weights are drawn in [0.5, 1.5].

logprobs_bf16_sdpa is what align's dense attention backend (scaled_dot_product_attention) is
checked against: in bf16 it rounds the scores differently from eager.

Usage: ~/.cache/align/venv/bin/python tools/golden_model.py [--out tests/golden/model]
       [--add-sdpa]  (only adds logprobs_bf16_sdpa to the existing files, models untouched)
Run under ONEDNN_MAX_CPU_ISA=AVX2 on an AVX2 machine, as the tests run (tests/model/CMakeLists.txt).
"""

import argparse
import json
import math
import os
import shutil

import torch
from transformers import Phi3Config, Phi3ForCausalLM

SEED = 20250101

PHI4_TINY = dict(
    vocab_size=320,
    hidden_size=64,
    intermediate_size=128,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    original_max_position_embeddings=128,
    rope_theta=250000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=3,
)

MINI_TINY = dict(
    vocab_size=320,
    hidden_size=96,
    intermediate_size=96,
    num_hidden_layers=2,
    num_attention_heads=6,
    num_key_value_heads=2,
    max_position_embeddings=128,
    original_max_position_embeddings=32,
    rope_theta=10000.0,
    partial_rotary_factor=0.75,  # head_dim 16 -> rotary dim 12 -> 6 frequencies
    rope_scaling={
        "type": "longrope",
        "short_factor": [1.0, 1.02, 1.05, 1.1, 1.25, 1.5],
        "long_factor": [1.0, 1.4, 2.3, 3.7, 6.0, 9.5],
    },
    sliding_window=20,
    rms_norm_eps=1e-5,
    tie_word_embeddings=True,
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=3,
)

# (lengths of the teacher-forced sequences, (prompt length, new tokens) for greedy decoding,
#  (prompt length, new tokens) for greedy decoding with log-probs across the longrope switch)
PHI4_SEQS = ([1, 2, 5, 17, 40], [(1, 8), (6, 12), (20, 16)], [])
# 32 = original_max_position_embeddings (short factors), 33 and 48 switch to the long factors;
# 21+ tokens exercise the sliding window of 20. The 26-token prompt decodes across the switch.
# Crossing: a prompt well below the switch, one ending just before it, one exactly at it (the
# first decode step crosses), and one past it (long factors from the prefill on).
MINI_SEQS = ([1, 3, 9, 21, 32, 33, 48], [(4, 10), (26, 14)], [(20, 24), (31, 5), (32, 6), (40, 8)])


def randomize(model, gen):
    # Tied embeddings double as the output layer: keep them small so logits stay a few units wide.
    embed_std = 0.3 if model.config.tie_word_embeddings else 1.0
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("layernorm.weight") or name == "model.norm.weight":
                p.copy_(0.5 + torch.rand(p.shape, generator=gen))
            elif name == "model.embed_tokens.weight":
                p.copy_(torch.randn(p.shape, generator=gen) * embed_std)
            else:
                fan_in = p.shape[1]
                p.copy_(torch.randn(p.shape, generator=gen) * (1.6 / math.sqrt(fan_in)))


def logprobs(model, tokens):
    ids = torch.tensor([tokens])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    out = [0.0] + [lp[i - 1, tokens[i]].item() for i in range(1, len(tokens))]
    return out


def naive_greedy(model, prompt, new_tokens):
    seq = list(prompt)
    for _ in range(new_tokens):
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([seq])).logits[0, -1].float()
        seq.append(int(torch.argmax(logits)))
    return seq[len(prompt):]


def greedy(model, prompt, new_tokens):
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=new_tokens, do_sample=False)
    got = out[0, len(prompt):].tolist()
    naive = naive_greedy(model, prompt, new_tokens)
    if got != naive:
        raise SystemExit(f"generate() {got} differs from the naive argmax loop {naive}")
    return got


def crossing(model, prompt, new_tokens):
    """generate()'s greedy tokens with its per-step log-probs, and the full forward's."""
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = 0
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                             max_new_tokens=new_tokens, do_sample=False, output_logits=True,
                             return_dict_in_generate=True)
    tokens = out.sequences[0, len(prompt):].tolist()
    if tokens != naive_greedy(model, prompt, new_tokens):
        raise SystemExit(f"generate() {tokens} differs from the naive argmax loop")
    seq = list(prompt) + tokens
    step_lp = []
    for i, step_logits in enumerate(out.logits):
        lp = torch.log_softmax(step_logits[0].float(), dim=-1)
        step_lp.append(lp[tokens[i]].item())
        # What docs/longrope.md states: step i's logits are those of a forward over seq[:P + i].
        with torch.no_grad():
            ref = model(input_ids=torch.tensor([seq[:len(prompt) + i]])).logits[0, -1].float()
        err = (step_logits[0].float() - ref).abs().max().item()
        tol = 1e-4 if model.dtype == torch.float32 else 0.1
        if err > tol:
            raise SystemExit(f"generate() step {i} logits differ from a forward over the prefix: {err}")
    full = logprobs(model, seq)[len(prompt):]
    return {"tokens": tokens, "logprobs": [round(x, 7) for x in step_lp],
            "full_logprobs": [round(x, 7) for x in full]}


def build(out_dir, name, kwargs, seqs, max_shard_size, gen):
    config = Phi3Config(**kwargs)
    model = Phi3ForCausalLM(config)
    randomize(model, gen)
    model_dir = os.path.join(out_dir, name)
    shutil.rmtree(model_dir, ignore_errors=True)
    model.to(torch.bfloat16).save_pretrained(model_dir, max_shard_size=max_shard_size)
    for extra in ("generation_config.json",):
        path = os.path.join(model_dir, extra)
        if os.path.exists(path):
            os.remove(path)

    models = {}
    for tag, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        m = Phi3ForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")
        m.eval()
        models[tag] = m

    lengths, greedy_specs, crossing_specs = seqs
    record = {"model": name, "sequences": [], "greedy": []}
    for length in lengths:
        tokens = torch.randint(0, kwargs["vocab_size"], (length,), generator=gen).tolist()
        entry = {"tokens": tokens}
        for tag, m in models.items():
            entry["logprobs_" + tag] = [round(x, 7) for x in logprobs(m, tokens)]
        record["sequences"].append(entry)
    add_sdpa(model_dir, record)
    for prompt_len, new_tokens in greedy_specs:
        prompt = torch.randint(0, kwargs["vocab_size"], (prompt_len,), generator=gen).tolist()
        entry = {"prompt": prompt}
        for tag, m in models.items():
            entry[tag] = greedy(m, prompt, new_tokens)
        record["greedy"].append(entry)
    if crossing_specs:
        record["crossing"] = []
    for prompt_len, new_tokens in crossing_specs:
        prompt = torch.randint(0, kwargs["vocab_size"], (prompt_len,), generator=gen).tolist()
        entry = {"prompt": prompt}
        for tag, m in models.items():
            entry[tag] = crossing(m, prompt, new_tokens)
        record["crossing"].append(entry)
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(record, f, separators=(",", ":"))
        f.write("\n")
    print(name, "rope:", models["fp32"].config.rope_parameters)


def add_sdpa(model_dir, record):
    m = Phi3ForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16, attn_implementation="sdpa")
    m.eval()
    for entry in record["sequences"]:
        entry["logprobs_bf16_sdpa"] = [round(x, 7) for x in logprobs(m, entry["tokens"])]
    # The full forward over each crossing record's bf16 prompt + continuation, with sdpa.
    for entry in record.get("crossing", []):
        bf16 = entry["bf16"]
        seq = list(entry["prompt"]) + bf16["tokens"]
        full = logprobs(m, seq)[len(entry["prompt"]):]
        bf16["full_logprobs_sdpa"] = [round(x, 7) for x in full]


def main():
    parser = argparse.ArgumentParser()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser.add_argument("--out", default=os.path.join(root, "tests", "golden", "model"))
    parser.add_argument("--add-sdpa", action="store_true")
    args = parser.parse_args()
    if args.add_sdpa:
        for name in ("phi4_tiny", "mini_tiny"):
            path = os.path.join(args.out, name + ".json")
            with open(path) as f:
                record = json.load(f)
            add_sdpa(os.path.join(args.out, name), record)
            with open(path, "w") as f:
                json.dump(record, f, separators=(",", ":"))
                f.write("\n")
        return
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    build(args.out, "phi4_tiny", PHI4_TINY, PHI4_SEQS, "100KB", gen)
    build(args.out, "mini_tiny", MINI_TINY, MINI_SEQS, "10MB", gen)


if __name__ == "__main__":
    main()
