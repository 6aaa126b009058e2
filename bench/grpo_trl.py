#!/usr/bin/env python3
"""bench/grpo reference: the same GRPO steps in TRL's GRPOTrainer (trl 1.16, transformers'
generate, peft LoRA) on the model folder and prompts build/bin/grpo_bench left in --out DIR
(DIR/model, DIR/prompts.jsonl), with grpo_bench's arguments (bench/grpo_compare.sh passes both the
same), and prints one table row in grpo_bench's columns.

Settings (GRPOConfig): per_device_train_batch_size = prompts x generations (one generation and
one optimizer step per step, gradient_accumulation_steps 1), num_generations, max_completion_length,
temperature 1, beta 0, loss_type dapo, learning_rate 1e-5, fp32, CPU or CUDA; LoRA r with alpha
2r on qkv_proj, o_proj, gate_up_proj, down_proj, dropout 0. Reward: 1 when the completion text
matches the regex (align's format reward). Step 0 (warm-up) is not timed; a step's time runs from
on_step_begin to on_step_end, and its generation time is the time spent in
_generate_single_turn (transformers.generate).
Usage: ~/.cache/align/venv/bin/python bench/grpo_trl.py --out DIR [--generations 8]
       [--new-tokens 64] [--lora-rank 16] [--steps 3] [--device cpu] [--dtype fp32]
       (grpo_bench's --config, --tokenizer, --prompts and --grad-accum are accepted: the folder
       already holds that model and those prompts; gradient_accumulation_steps stays 1)
"""
import argparse
import json
import re
import tempfile
import time

import datasets
import torch
from peft import LoraConfig
from transformers import AutoTokenizer, TrainerCallback
from trl import GRPOConfig, GRPOTrainer


class TimedTrainer(GRPOTrainer):
    generate_seconds = []
    completion_tokens = []

    def _generate_single_turn(self, *args, **kwargs):
        start = time.perf_counter()
        ids, logprobs = super()._generate_single_turn(*args, **kwargs)
        TimedTrainer.generate_seconds.append(time.perf_counter() - start)
        TimedTrainer.completion_tokens.append(sum(len(c) for c in ids))
        return ids, logprobs


class StepTimes(TrainerCallback):
    def __init__(self):
        self.seconds = []
        self.start = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self.start = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds.append(time.perf_counter() - self.start)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--out", required=True)
    p.add_argument("--generations", type=int, default=8)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--lora-rank", type=int, default=16)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--pattern", default="[0-9]")
    for shared in ("--config", "--tokenizer", "--prompts", "--grad-accum"):
        p.add_argument(shared)
    args = p.parse_args()
    model_dir = f"{args.out}/model"
    prompts = [json.loads(line)["text"] for line in open(f"{args.out}/prompts.jsonl")
               if line.strip()]
    dtype = torch.float32 if args.dtype == "fp32" else torch.bfloat16
    pattern = re.compile(args.pattern)

    def format_reward(completions, **kwargs):
        return [1.0 if pattern.search(c) else 0.0 for c in completions]

    tok = AutoTokenizer.from_pretrained(model_dir)
    with tempfile.TemporaryDirectory() as out:
        config = GRPOConfig(
            output_dir=out, report_to=[], use_cpu=args.device == "cpu",
            bf16=args.dtype == "bf16", seed=0,
            per_device_train_batch_size=len(prompts) * args.generations,
            gradient_accumulation_steps=1, num_generations=args.generations,
            max_completion_length=args.new_tokens, temperature=1.0, beta=0.0, loss_type="dapo",
            learning_rate=1e-5, max_steps=args.steps + 1, logging_steps=1, save_strategy="no",
            model_init_kwargs={"dtype": dtype})
        lora = LoraConfig(r=args.lora_rank, lora_alpha=2 * args.lora_rank, lora_dropout=0.0,
                          target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"])
        times = StepTimes()
        trainer = TimedTrainer(model=model_dir, reward_funcs=[format_reward], args=config,
                               train_dataset=datasets.Dataset.from_list(
                                   [{"prompt": t} for t in prompts]),
                               processing_class=tok, peft_config=lora, callbacks=[times])
        trainer.train()
    steps = times.seconds[1:]
    gen = TimedTrainer.generate_seconds[1:len(steps) + 1]
    tokens = TimedTrainer.completion_tokens[1:len(steps) + 1]
    sps = sum(steps) / len(steps)
    print(f"{'TRL GRPOTrainer':<18} {sps:>9.2f} {sum(gen) / len(gen):>11.2f} "
          f"{sps - sum(gen) / len(gen):>9.2f} {sum(tokens) / len(tokens):>12.0f} "
          f"{sum(tokens) / sum(gen):>11.0f}  ({torch.get_num_threads()} threads)", flush=True)


if __name__ == "__main__":
    main()
