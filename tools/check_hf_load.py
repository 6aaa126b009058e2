#!/usr/bin/env python3
"""Dev-only: checks that what align writes loads unchanged in Hugging Face and computes the same.

For a Phi-4-shaped tiny model (sharded) and a Phi-4-mini-shaped one (tied embeddings, partial
rotary, longrope), runs `align init`, loads the directory with transformers (and its tokenizer with
AutoTokenizer), and compares transformers' fp32 per-token log-probs with `align logprobs`.
Usage: tools/check_hf_load.py [--align build/bin/align]   (run with the venv's python)
"""
import argparse
import json
import pathlib
import subprocess
import sys
import tempfile

import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent


def align(binary, *args):
    subprocess.run([binary, *map(str, args)], check=True, stdout=subprocess.DEVNULL)


def hf_logprobs(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0].float()
    lp = torch.log_softmax(logits, dim=-1)
    return [None] + [lp[i - 1, ids[i]].item() for i in range(1, len(ids))]


def check(binary, name, init_args, work):
    out = work / name
    align(binary, "init", *init_args, "--out", out, "--seed", 7)
    for f in out.glob("*.safetensors"):
        with safe_open(f, "pt") as s:
            assert s.metadata().get("format") == "pt", f
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    rng = torch.Generator().manual_seed(0)
    vocab = model.config.vocab_size
    seqs = [torch.randint(0, vocab, (n,), generator=rng).tolist() for n in (1, 5, 40, 70)]
    if (out / "tokenizer.json").exists():
        tok = AutoTokenizer.from_pretrained(out)
        seqs.append(tok("hello world, 12345 tokens!")["input_ids"])
    inp = work / f"{name}.in.jsonl"
    inp.write_text("".join(json.dumps({"token_ids": s}) + "\n" for s in seqs))
    res = work / f"{name}.out.jsonl"
    align(binary, "logprobs", "--model", out, "--input", inp, "--output", res, "--dtype", "fp32")
    ours = [json.loads(l)["logprobs"] for l in res.read_text().splitlines()]
    err = 0.0
    assert len(ours) == len(seqs), (len(ours), len(seqs))
    for s, o in zip(seqs, ours):
        ref = hf_logprobs(model, s)
        assert len(o) == len(ref) == len(s) and o[0] is None
        err = max([err] + [abs(a - b) for a, b in zip(o[1:], ref[1:])])
    n_files = len(list(out.glob("*.safetensors")))
    print(f"{name:<10} loads in transformers: yes  shards: {n_files}  "
          f"max |align - HF| fp32 logprob: {err:.2e}")
    return err


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--align", default=str(ROOT / "build/bin/align"))
    a = p.parse_args()
    tokenizer = ROOT / "tests/golden/tokenizer/main"
    with tempfile.TemporaryDirectory() as d:
        work = pathlib.Path(d)
        e1 = check(a.align, "phi4-tiny", ["--preset", "tiny", "--tokenizer", tokenizer,
                                          "--max-shard-size", 200000], work)
        e2 = check(a.align, "mini-tiny",
                   ["--config", ROOT / "tests/golden/model/mini_tiny/config.json"], work)
    sys.exit(0 if max(e1, e2) < 1e-4 else 1)


if __name__ == "__main__":
    main()
