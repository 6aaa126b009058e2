#!/usr/bin/env python3
"""bench/sft reference: the same SFT step in transformers (+ peft for LoRA) on the same machine.

Builds the model with `align init` (same preset or config.json and seed as sft_bench, so the same
weights), then times forward + backward + clip_grad_norm_ + AdamW.step on a random batch of B x T
tokens, full fine-tuning and/or LoRA (peft, r as given, all four projections), and prints
sft_bench's columns. Rows are plain causal rows whatever --docs says (accepted so that one command
line serves both sides): transformers 5.23 with sdpa does not turn restarting position_ids into a
block-diagonal mask (measured: a packed row's second example then attends to the first), so its
rows do as much attention work as sft_bench --docs 1.
Peak memory is the process's max RSS (with --mode both the LoRA row includes the full run's).
Usage: ~/.cache/align/venv/bin/python bench/sft_transformers.py [--preset tiny | --config FILE]
       [--rows 4] [--seq 256] [--docs 4] [--steps 5] [--mode full|lora|both] [--lora-rank 16]
       [--device cpu] [--attn sdpa|eager]
"""
import argparse
import pathlib
import resource
import subprocess
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent


def batch(args, vocab):
    ids = torch.randint(0, vocab, (args.rows, args.seq), device=args.device)
    return dict(input_ids=ids, labels=ids)


def run(model_dir, args, lora):
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation=args.attn).to(args.device)
    if lora:
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(
            r=args.lora_rank, lora_alpha=2 * args.lora_rank, lora_dropout=0.0,
            target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"]))
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    inputs = batch(args, model.config.vocab_size)
    seconds = 0.0
    for step in range(args.steps + 1):  # step 0 warms up
        start = time.perf_counter()
        opt.zero_grad()
        loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        if step > 0:
            seconds += time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    return seconds / args.steps, args.rows * args.seq * args.steps / seconds, peak_gb, loss.item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="tiny")
    p.add_argument("--config", default="")
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--docs", type=int, default=4)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--mode", default="both", choices=["full", "lora", "both"])
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--attn", default="sdpa")
    args = p.parse_args()
    source = ["--config", args.config] if args.config else ["--preset", args.preset]
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([str(ROOT / "build/bin/align"), "init", *source, "--out", f"{d}/m",
                        "--dtype", "fp32"], check=True, stdout=subprocess.DEVNULL)
        print(f"transformers {args.attn}: {args.config or 'preset ' + args.preset}, "
              f"{args.device} fp32, batch {args.rows} x {args.seq} (plain causal rows), "
              f"{args.steps} steps, {torch.get_num_threads()} threads")
        print(f"{'mode':<10} {'s/step':>9} {'tokens/s':>12} {'peak mem GB':>12} {'loss':>9}")
        modes = {"full": [False], "lora": [True], "both": [False, True]}[args.mode]
        for lora in modes:
            sps, tps, peak, loss = run(f"{d}/m", args, lora)
            name = f"lora r{args.lora_rank}" if lora else "full"
            print(f"{name:<10} {sps:>9.3f} {tps:>12.1f} {peak:>12.2f} {loss:>9.4f}", flush=True)


if __name__ == "__main__":
    main()
