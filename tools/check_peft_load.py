#!/usr/bin/env python3
"""Checks that LoRA adapters and merged models written by align load in PEFT and transformers and
compute what align computes.

The test PeftExport.PeftAndTransformersComputeAlignsLogits (train_model_test) writes, for the
golden tiny models (phi4_tiny: Phi-4 shaped; mini_tiny: tied, partial rotary, longrope, sliding
window) with rank-4 adapters with random B on all four Phi3 projections: the PEFT adapter
directory, the merged model in fp32 and in bf16, token rows, and align's logits with the adapter on
an fp32 and on a bf16 base, and a manifest.json listing them; then runs this script on it:

  1. peft.PeftModel.from_pretrained(base, adapter) on an fp32 base: logits vs align's (fp32);
  2. the same on a bf16 base (PEFT keeps the adapters fp32): both bf16 results against the fp32
     logits, align's error at most twice PEFT's (FlashAttention's rule, see BF16_RATIO);
  3. transformers loads the fp32 merged directory: logits vs align's adapter logits (fp32);
  4. PEFT's merge_and_unload() on the bf16 base vs align's merged bf16 weights (max |diff|).

Usage: tools/check_peft_load.py MANIFEST.json   (with align's venv python: scripts/test.sh
installs peft and transformers there). Prints each error and OK or FAILED; exits non-zero on
FAILED.
"""
import argparse
import json
import pathlib
import sys

import torch
from peft import PeftModel
from safetensors import safe_open
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

FP32_LIMIT = 1e-4  # logits reach ~11; fp32 vs fp64 alone differs by ~2e-5
# bf16 is judged by its error against fp32 (align's fp32 logits with the adapter, which PEFT's
# fp32 matches to FP32_LIMIT), FlashAttention's rule: align's bf16 error at most twice PEFT's
# bf16 error on the same inputs, plus a floor of one bf16 rounding step at |logit| ~ 8 (0.03).
# A fixed distance between two bf16 runs would encode one CPU's bf16 kernels.
BF16_RATIO, BF16_FLOOR = 2.0, 0.03


def load(path, dtype):
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="eager")
    return model.eval()


def logits(model, ids):
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def max_err(model, rows, ours, prefix):
    return max((logits(model, ids) - ours[f"{prefix}.{k}"]).abs().max().item()
               for k, ids in enumerate(rows))


def check(entry):
    d = pathlib.Path(entry["dir"])
    rows, base = entry["rows"], entry["base"]
    ours = load_file(d / "align_logits.safetensors")
    with safe_open(d / "adapter/adapter_model.safetensors", "pt") as f:
        assert f.metadata().get("format") == "pt"
    res = {}

    peft32 = PeftModel.from_pretrained(load(base, torch.float32), d / "adapter").eval()
    res["peft fp32"] = max_err(peft32, rows, ours, "fp32")
    # The adapter matters: the base alone is far off.
    with peft32.disable_adapter():
        res["(base alone) fp32"] = max_err(peft32, rows, ours, "fp32")

    peft16 = PeftModel.from_pretrained(load(base, torch.bfloat16), d / "adapter").eval()
    a = next(p for n, p in peft16.named_parameters() if "lora_A" in n)
    assert a.dtype == torch.float32, a.dtype
    res["peft bf16 vs align bf16"] = max_err(peft16, rows, ours, "bf16")
    res["peft bf16 vs fp32"] = max_err(peft16, rows, ours, "fp32")
    res["align bf16 vs fp32"] = max((ours[f"bf16.{k}"] - ours[f"fp32.{k}"]).abs().max().item()
                                    for k in range(len(rows)))

    res["merged fp32 (transformers)"] = max_err(load(d / "merged", torch.float32), rows, ours,
                                                "fp32")
    merged_hf = peft16.merge_and_unload().state_dict()
    ours_merged = load(d / "merged_bf16", torch.bfloat16).state_dict()
    res["merged bf16 weights vs PEFT merge"] = max(
        (merged_hf[k].float() - v.float()).abs().max().item() for k, v in ours_merged.items())
    return res


def main():
    p = argparse.ArgumentParser()
    p.add_argument("manifest", help="manifest.json written by the test")
    a = p.parse_args()
    manifest = json.loads(pathlib.Path(a.manifest).read_text())
    ok = True
    for entry in manifest:
        res = check(entry)
        for what, err in res.items():
            print(f"{entry['name']:<10} {what:<36} max |diff| {err:.2e}")
        ok &= res["peft fp32"] < FP32_LIMIT and res["merged fp32 (transformers)"] < FP32_LIMIT
        ok &= res["align bf16 vs fp32"] <= BF16_RATIO * res["peft bf16 vs fp32"] + BF16_FLOOR
        ok &= res["merged bf16 weights vs PEFT merge"] == 0
        ok &= res["(base alone) fp32"] > 100 * FP32_LIMIT
    print("OK" if ok else "FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
