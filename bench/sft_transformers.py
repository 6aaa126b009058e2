#!/usr/bin/env python3
"""bench/sft reference: the same SFT step in transformers (+ peft for LoRA) on the same machine.

Builds the model with `align init` (same preset and sizes as sft_bench), then times
forward + backward + clip_grad_norm_ + AdamW.step on a random batch of B x T tokens, full
fine-tuning and LoRA (peft, r as given, all four projections), and prints sft_bench's table.
Usage: ~/.cache/align/venv/bin/python bench/sft_transformers.py [--preset tiny] [--rows 4]
       [--seq 256] [--steps 5] [--lora-rank 16] [--device cpu] [--attn sdpa|eager]
"""
import argparse
import pathlib
import subprocess
import tempfile
import time

import torch
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent


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
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (args.rows, args.seq), device=args.device)
    seconds = 0.0
    for step in range(args.steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if args.device == "cuda":
            torch.cuda.synchronize()
        if step > 0:
            seconds += time.perf_counter() - start
    return args.rows * args.seq * args.steps / seconds, loss.item()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", default="tiny")
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--seq", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--device", default="cpu")
    p.add_argument("--attn", default="sdpa")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([str(ROOT / "build/bin/align"), "init", "--preset", args.preset, "--out",
                        f"{d}/m", "--dtype", "fp32"], check=True, stdout=subprocess.DEVNULL)
        print(f"transformers {args.attn}: preset {args.preset}, {args.device} fp32, "
              f"batch {args.rows} x {args.seq}, {args.steps} steps, torch threads "
              f"{torch.get_num_threads()}")
        print(f"{'mode':<10} {'tokens/s':>12} {'loss':>9}")
        for lora in (False, True):
            tps, loss = run(f"{d}/m", args, lora)
            name = f"lora r{args.lora_rank}" if lora else "full"
            print(f"{name:<10} {tps:>12.1f} {loss:>9.4f}")


if __name__ == "__main__":
    main()
