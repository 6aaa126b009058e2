#!/usr/bin/env python3
"""Logits of a base model with a PEFT LoRA adapter, as peft computes them (test helper).

Run by tests/smollm2/ (SmolLM2Sft.*) with align's venv python: the adapter that `align sft`
wrote is loaded with peft.PeftModel.from_pretrained on the base folder (fp32, eager attention),
and for each row of token ids the fp32 logits [T, V] are written to one safetensors file as
"peft.<row>" (adapter on) and "base.<row>" (adapter disabled), for the test to compare with
align's own forward.

Usage: python tools/smollm2_peft_logits.py --model DIR --adapter DIR --ids ROWS.json --out F
       (ROWS.json: [[id, ...], ...])
"""

import argparse
import json

import torch
import transformers
from peft import PeftModel
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True)
    p.add_argument("--adapter", required=True)
    p.add_argument("--ids", required=True)
    p.add_argument("--out", required=True)
    a = p.parse_args()
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    rows = json.load(open(a.ids))
    base = AutoModelForCausalLM.from_pretrained(a.model, dtype=torch.float32,
                                                attn_implementation="eager")
    model = PeftModel.from_pretrained(base, a.adapter).eval()
    out = {}
    with torch.no_grad():
        for k, ids in enumerate(rows):
            out[f"peft.{k}"] = model(torch.tensor([ids])).logits[0].float().contiguous()
            with model.disable_adapter():
                out[f"base.{k}"] = model(torch.tensor([ids])).logits[0].float().contiguous()
    save_file(out, a.out, metadata={"format": "pt"})


if __name__ == "__main__":
    main()
