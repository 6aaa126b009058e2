#!/usr/bin/env python3
"""bench/rollout baseline: the same loads through Hugging Face transformers' generate().

(a) batch-1 greedy decode of --new-tokens tokens from a 16-token prompt; (b) the PTS-shaped load:
--samples samples (num_return_sequences, do_sample, temperature 1) from each of --prefixes nested
prefixes of one random --completion-token completion, --new-tokens new tokens each (min_new_tokens
too, so every sample generates them all, as the engine does without stop tokens).
--config FILE builds a random model of that config.json's shape directly on the device instead of
loading one (rollout_bench --save-config writes the file; a Phi-4 checkpoint is 29 GB).
Usage: ~/.cache/align/venv/bin/python bench/rollout_transformers.py (--model DIR | --config FILE)
       [--device cpu] [--dtype fp32] [--prefixes 8] [--samples 64] [--completion 512]
       [--new-tokens 256]
"""
import argparse
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def main():
    p = argparse.ArgumentParser()
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model")
    source.add_argument("--config")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32")
    p.add_argument("--prefixes", type=int, default=8)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--completion", type=int, default=512)
    p.add_argument("--new-tokens", type=int, default=256)
    a = p.parse_args()
    dtype = torch.bfloat16 if a.dtype == "bf16" else torch.float32
    if a.config:
        with torch.device(a.device):
            model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(a.config),
                                                     dtype=dtype).eval()
    else:
        model = AutoModelForCausalLM.from_pretrained(a.model, dtype=dtype).to(a.device).eval()
    torch.manual_seed(0)
    completion = torch.randint(0, model.config.vocab_size, (a.completion,))
    print(f"transformers generate(): {a.model or 'random ' + a.config}, "
          f"{model.config.num_hidden_layers} layers, {a.device} {a.dtype}")
    print(f"{'load':<28} {'tokens':>10} {'tokens/s':>12}")
    with torch.no_grad():
        prompt = completion[:16].view(1, -1).to(a.device)
        kw = dict(max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, pad_token_id=0)
        model.generate(prompt, do_sample=False, **kw)  # warm-up
        start = time.perf_counter()
        out = model.generate(prompt, do_sample=False, **kw)
        s = time.perf_counter() - start
        n = out.shape[1] - prompt.shape[1]
        print(f"{'batch-1 decode':<28} {n:>10} {n / s:>12.1f}")
        n = 0
        start = time.perf_counter()
        for i in range(a.prefixes):
            cut = max(1, a.completion * (i + 1) // a.prefixes)
            prompt = completion[:cut].view(1, -1).to(a.device)
            out = model.generate(prompt, do_sample=True, temperature=1.0, top_k=0,
                                 num_return_sequences=a.samples, **kw)
            n += (out.shape[1] - prompt.shape[1]) * a.samples
        s = time.perf_counter() - start
        label = f"PTS {a.prefixes}x{a.samples}, {a.new_tokens} new"
        print(f"{label:<28} {n:>10} {n / s:>12.1f}")


if __name__ == "__main__":
    main()
