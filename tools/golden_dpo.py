#!/usr/bin/env python3
"""Writes tests/golden/dpo/phi4_tiny_losses.json (dev-only; tests never run Python).

The reference computation for the DPO losses on the tiny golden model (tests/golden/model/phi4_tiny),
written from the formulas (docs/dpo.md, TRL's DPOTrainer.dpo_loss) with transformers'
Phi3ForCausalLM, fp32 on CPU, eager attention. Each sequence is scored on its own (no padding, no
packing, no chains), so the file checks align's batching as well as its losses:

  sequence pairs  3 pairs of seeded random ids (prompt, chosen, rejected); log pi(c) = sum over the
                  completion of log p(token | prompt + completion so far); IPO divides by the
                  completion length (policy and reference alike).
  token pairs     4 PTS-style pairs (prompt ids, one chosen and one rejected token): log p(token |
                  prompt) from the prompt's last logits; three share one prefix chain.
  reference       stored log-probs: the policy's own, shifted by seeded N(0, 3) noise, so z != 0.
  objective       sum_i w_i loss_i / sum_i w_i + nll_weight * sum_i -log pi(c_i) / chosen tokens.
  grads           per parameter after one backward: sum of squares and the first 8 values.

Usage: ~/.cache/align/venv/bin/python tools/golden_dpo.py
"""
import json
import pathlib

import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = ROOT / "tests/golden/model/phi4_tiny"
OUT = ROOT / "tests/golden/dpo/phi4_tiny_losses.json"

CASES = [
    {"name": "sigmoid", "data": "sequence", "loss": "sigmoid", "beta": 0.1, "label_smoothing": 0.0},
    {"name": "cdpo", "data": "sequence", "loss": "sigmoid", "beta": 0.1, "label_smoothing": 0.1},
    {"name": "ipo", "data": "sequence", "loss": "ipo", "beta": 0.1},
    {"name": "hinge", "data": "sequence", "loss": "hinge", "beta": 0.5},
    {"name": "robust", "data": "sequence", "loss": "robust", "beta": 0.1, "label_smoothing": 0.1},
    {"name": "sigmoid_weighted_nll", "data": "sequence", "loss": "sigmoid", "beta": 0.1,
     "weights": [1.0, 0.5, 2.0], "nll_weight": 0.5},
    {"name": "token_sigmoid", "data": "token", "loss": "sigmoid", "beta": 0.1},
    {"name": "token_hinge_weighted", "data": "token", "loss": "hinge", "beta": 0.5,
     "weights": [0.2, 0.9, 0.4, 0.6]},
]


def seq_logp(model, prompt, completion):
    ids = torch.tensor([prompt + completion])
    logp = F.log_softmax(model(ids).logits.float()[0], -1)
    n = len(prompt)
    return sum(logp[n - 1 + j, completion[j]] for j in range(len(completion)))


def token_logp(model, prompt, token):
    logits = model(torch.tensor([prompt])).logits.float()[0, -1]
    return F.log_softmax(logits, -1)[token]


def loss_of(case, z):
    b, e = case["beta"], case.get("label_smoothing", 0.0)
    if case["loss"] == "sigmoid":
        return -(1 - e) * F.logsigmoid(b * z) - e * F.logsigmoid(-b * z)
    if case["loss"] == "ipo":
        return (z - 1 / (2 * b)) ** 2
    if case["loss"] == "hinge":
        return torch.relu(1 - b * z)
    if case["loss"] == "robust":
        return (-(1 - e) * F.logsigmoid(b * z) + e * F.logsigmoid(-b * z)) / (1 - 2 * e)
    raise ValueError(case["loss"])


def main():
    model = AutoModelForCausalLM.from_pretrained(MODEL, dtype=torch.float32,
                                                 attn_implementation="eager")
    model.eval()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(4321)
    rand = lambda n: torch.randint(4, vocab, (n,), generator=g).tolist()
    seq = [{"prompt": rand(p), "chosen": rand(c), "rejected": rand(r)}
           for p, c, r in [(4, 5, 2), (6, 3, 6), (3, 4, 4)]]
    chain = rand(9)
    tok = [{"query_id": "a", "prompt": chain[:n], "chosen": c, "rejected": r}
           for n, c, r in [(3, 10, 11), (6, 12, 13), (9, 14, 15)]]
    tok.append({"query_id": "b", "prompt": rand(5), "chosen": 16, "rejected": 17})

    def policy(data):
        if data == "sequence":
            c = torch.stack([seq_logp(model, p["prompt"], p["chosen"]) for p in seq])
            r = torch.stack([seq_logp(model, p["prompt"], p["rejected"]) for p in seq])
            nc = torch.tensor([float(len(p["chosen"])) for p in seq])
            nr = torch.tensor([float(len(p["rejected"])) for p in seq])
        else:
            c = torch.stack([token_logp(model, p["prompt"], p["chosen"]) for p in tok])
            r = torch.stack([token_logp(model, p["prompt"], p["rejected"]) for p in tok])
            nc = nr = torch.ones(len(tok))
        return c, r, nc, nr

    with torch.no_grad():
        for data, pairs in (("sequence", seq), ("token", tok)):
            c, r, _, _ = policy(data)
            noise = torch.randn(2, len(pairs), generator=g) * 3
            for i, p in enumerate(pairs):
                p["ref_chosen"] = (c[i] + noise[0, i]).float().item()
                p["ref_rejected"] = (r[i] + noise[1, i]).float().item()

    names = [n for n, _ in model.named_parameters()]
    params = dict(model.named_parameters())
    results = []
    for case in CASES:
        model.zero_grad()
        pairs = seq if case["data"] == "sequence" else tok
        c, r, nc, nr = policy(case["data"])
        rc = torch.tensor([p["ref_chosen"] for p in pairs])
        rr = torch.tensor([p["ref_rejected"] for p in pairs])
        if case["loss"] == "ipo":
            c, r, rc, rr = c / nc, r / nr, rc / nc, rr / nr
        z = (c - rc) - (r - rr)
        losses = loss_of(case, z)
        w = torch.tensor(case.get("weights", [1.0] * len(pairs)))
        total = (losses * w).sum() / w.sum()
        chosen_sum = policy(case["data"])[0].sum() if case.get("nll_weight") else None
        if chosen_sum is not None:
            total = total + case["nll_weight"] * (-chosen_sum) / nc.sum()
        total.backward()
        grads = {}
        for n in names:
            gr = params[n].grad.detach().flatten()
            grads[n] = {"sum_sq": (gr * gr).sum().item(), "first": gr[:8].tolist()}
        b = case["beta"]
        results.append({**case, "losses": losses.tolist(), "objective": total.item(),
                        "chosen_rewards": (b * (c - rc)).tolist(),
                        "rejected_rewards": (b * (r - rr)).tolist(), "grads": grads})
        print(f"{case['name']}: loss {total.item():.6f}")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"model": "phi4_tiny", "sequence_pairs": seq, "token_pairs": tok,
                               "cases": results}, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
