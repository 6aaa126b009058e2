#!/usr/bin/env python3
"""Writes tests/golden/sft/phi4_tiny_steps.json (dev-only; tests never run Python).

The reference computation for SFT on the tiny golden model (tests/golden/model/phi4_tiny), in
transformers + torch.optim, fp32 on CPU, eager attention:

  batch    2 rows x 12 tokens (seeded random ids), labels = ids with the first 4 / 7 positions of
           each row set to -100 (prompt tokens carry no loss).
  loss     HF's causal-LM loss with the total target count as normaliser: sum over rows and
           positions t of -log p(labels[t+1] | ids[:t+1]) / (number of labels != -100 after the
           shift) -- what transformers' Trainer computes with num_items_in_batch.
  grads    for every parameter after one backward: sum, sum of squares, and the first 8 values.
  steps    3 optimizer steps on the same batch: torch.optim.AdamW(lr 1e-3, betas (0.9, 0.999),
           eps 1e-8), weight decay 0.01 on 2-D weights only (norms excluded, as HF Trainer),
           torch.nn.utils.clip_grad_norm_(max_norm 0.5) before each step; the loss and the pre-clip
           grad norm at each step, and every parameter's sum after the last step.

Usage: ~/.cache/align/venv/bin/python tools/golden_sft.py
"""
import json
import pathlib

import torch
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests/golden/model/phi4_tiny"
OUT = ROOT / "tests/golden/sft/phi4_tiny_steps.json"
LR, WD, MAX_NORM, STEPS = 1e-3, 0.01, 0.5, 3


def loss_of(model, ids, labels):
    logits = model(ids).logits.float()
    shift_logits = logits[:, :-1].reshape(-1, logits.size(-1))
    shift_labels = labels[:, 1:].reshape(-1)
    count = (shift_labels != -100).sum()
    total = torch.nn.functional.cross_entropy(shift_logits, shift_labels, ignore_index=-100,
                                              reduction="sum")
    return total / count


def main():
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.train()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(1234)
    ids = torch.randint(0, vocab, (2, 12), generator=g)
    labels = ids.clone()
    labels[0, :4] = -100
    labels[1, :7] = -100

    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    loss = loss_of(model, ids, labels)
    loss.backward()
    grads = {}
    for n in names:
        gr = params[n].grad.detach().flatten()
        grads[n] = {"sum": gr.sum().item(), "sum_sq": (gr * gr).sum().item(),
                    "first": gr[:8].tolist()}
    model.zero_grad()

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=LR, betas=(0.9, 0.999), eps=1e-8)
    steps = []
    for _ in range(STEPS):
        opt.zero_grad()
        step_loss = loss_of(model, ids, labels)
        step_loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_NORM)
        opt.step()
        steps.append({"loss": step_loss.item(), "grad_norm": norm.item()})
    final = {n: params[n].detach().sum().item() for n in names}

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "model": "phi4_tiny", "ids": ids.tolist(), "labels": labels.tolist(),
        "loss": loss.item(), "grads": grads,
        "optimizer": {"lr": LR, "weight_decay": WD, "betas": [0.9, 0.999], "eps": 1e-8,
                      "max_grad_norm": MAX_NORM, "decay": "2-D weights only"},
        "steps": steps, "final_param_sums": final}, indent=1) + "\n")
    print(f"wrote {OUT}: loss {loss.item():.6f}, steps {[round(s['loss'], 6) for s in steps]}")


if __name__ == "__main__":
    main()
