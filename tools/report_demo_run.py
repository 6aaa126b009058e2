#!/usr/bin/env python3
"""Dev-only: writes a made-up pipeline run directory for looking at `align report` pages.

Usage: tools/report_demo_run.py OUT_DIR   then   tools/check_report.sh OUT_DIR
The numbers are synthetic (seeded), shaped like real SFT/DPO metrics, eval summaries and PTS outputs.
"""
import json, math, os, random, sys

out = sys.argv[1]
rng = random.Random(7)
for d in ("sft", "pts", "dpo", "eval-before", "eval-after"):
    os.makedirs(os.path.join(out, d), exist_ok=True)

def jsonl(path, rows):
    with open(os.path.join(out, path), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")

sft = []
for step in range(1, 121):
    r = {"step": step, "epoch": step // 40, "loss": 2.8 * math.exp(-step / 40) + 0.6 + rng.gauss(0, 0.05),
         "learning_rate": 2e-4 * min(1, step / 10) * (0.5 + 0.5 * math.cos(math.pi * step / 120)),
         "grad_norm": 1.5 + rng.random(), "num_tokens": step * 4096, "tokens_per_s": 18000 + rng.gauss(0, 300)}
    if step % 20 == 0:
        r["eval_loss"] = 2.8 * math.exp(-step / 40) + 0.75
    sft.append(r)
jsonl("sft/metrics.jsonl", sft)

dpo = []
for step in range(1, 61):
    m = 0.05 * step + rng.gauss(0, 0.1)
    r = {"step": step, "loss": math.log(1 + math.exp(-m)), "learning_rate": 5e-7, "grad_norm": 0.5 + rng.random(),
         "rewards/chosen": m / 3, "rewards/rejected": -2 * m / 3, "rewards/margins": m,
         "rewards/accuracies": min(1, 0.5 + step / 100 + rng.gauss(0, 0.05)),
         "logps/chosen": -12 + step * 0.01, "logps/rejected": -12 - step * 0.05}
    if step % 15 == 0:
        r.update({"eval_loss": math.log(1 + math.exp(-0.8 * m)), "eval_rewards/margins": 0.8 * m,
                  "eval_rewards/accuracies": min(1, 0.5 + step / 120)})
    dpo.append(r)
jsonl("dpo/metrics.jsonl", dpo)

def eval_summary(p1, p4):
    return {"items": 200, "num_samples": 4, "mean_tokens": 143.2, "seconds": 88.1, "oracle": "regex",
            "pass@k": {"1": {"mean": p1, "low": p1 - 0.06, "high": p1 + 0.06},
                       "4": {"mean": p4, "low": p4 - 0.05, "high": p4 + 0.05}}}
json.dump(eval_summary(0.412, 0.655), open(os.path.join(out, "eval-before/summary.json"), "w"))
json.dump(eval_summary(0.468, 0.690), open(os.path.join(out, "eval-after/summary.json"), "w"))
json.dump({"stages": [{"name": n, "seconds": s, "status": "done"} for n, s in
                      [("sft", 412.5), ("eval-before", 88.1), ("pts", 1290.0), ("dpo", 301.2),
                       ("eval-after", 90.3)]], "pairs": 37}, open(os.path.join(out, "summary.json"), "w"))

texts = [
    "To find x, solve 3x + 5 = 20.\nSubtract 5: 3x = 15.\nDivide by 3: x = 5.\nThe answer is <5> & done.",
    "We need 12 * 7. 12 * 7 = 84, so \"84\" apples in total.\nAnswer: 84",
    "The area is pi r^2 with r = 3, so 9pi < 30.\nSo the answer is 28.27",
]
queries, comps = [], []
for q in range(6):
    text = texts[q % len(texts)]
    tokens = [t for t in text.replace(" ", "\x00 ").split("\x00") if t]
    pieces = []
    for t in tokens:
        while "\n" in t:
            i = t.index("\n")
            if t[:i]: pieces.append(t[:i])
            pieces.append("\n"); t = t[i + 1:]
        if t: pieces.append(t)
    T = len(pieces)
    pivot = rng.randrange(3, T - 3)
    p0 = round(rng.uniform(0.3, 0.7), 3)
    p1 = 1.0 if q % 2 == 0 else 0.0
    est = [{"prefix_length": 0, "p": p0, "n": 16}]
    for L in sorted(set([T // 4, pivot, pivot + 1, (pivot + T) // 2, T])):
        if L == 0: continue
        p = p0 if L <= pivot else (p1 if L == T else round(min(1, max(0, p1 * 0.9 + (1 - p1) * 0.1 + rng.gauss(0, 0.05))), 3))
        est.append({"prefix_length": L, "p": p, "n": 0 if L == T else 16})
    comps.append({"query_id": f"gsm-{q:03d}", "completion_index": 0, "token_ids": list(range(T)),
                  "token_texts": pieces, "success": p1 == 1.0, "estimates": est, "pivot_positions": [pivot]})
    queries.append({"query_id": f"gsm-{q:03d}", "p_initial": p0, "n_initial": 16, "kept": True,
                    "completions_analysed": 1, "pivots": 1, "pairs": 6, "pivots_dropped": 0,
                    "rollouts": 160, "tokens_generated": 9000, "seconds": 20.5})
queries.append({"query_id": "gsm-easy", "p_initial": 1.0, "n_initial": 16, "kept": False,
                "completions_analysed": 0, "pivots": 0, "pairs": 0, "pivots_dropped": 0,
                "rollouts": 16, "tokens_generated": 900, "seconds": 1.1})
jsonl("pts/queries.jsonl", queries)
jsonl("pts/completions.jsonl", comps)
print(out)
