#!/usr/bin/env python3
"""Multi-step addition with carries: a deterministic, seeded task generator for align.

Each problem is OPERANDS numbers of DIGITS digits each (no leading zeros), e.g. "57+86=", answered
with the sum's digits only ("143"), most significant first, so the model must know every carry
before it writes the first digit: a wrong carry makes a wrong leading digit, one token that
decides success. Graded by the exact oracle on "answer".

Writes to --out (default: this directory):
  train.jsonl         SFT rows {"messages": [{"role": "user", "content": "57+86="},
                                             {"role": "assistant", "content": "143"}]}
  pts_queries.jsonl   {"id", "prompt", "answer"}: problems for Pivotal Token Search
  eval_queries.jsonl  {"id", "prompt", "answer"}: held-out problems for evaluation
  dev_queries.jsonl   {"id", "prompt", "answer"}: held-out problems for choosing DPO's step
                      (dpo.eval), so that the step is not chosen on the eval set
The four sets are disjoint (as operand tuples, and as unordered multisets, so "a+b" in eval
never has "b+a" in train). Same --seed and options, same files.
"""
import argparse
import json
import os
import random


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--operands", type=int, default=2)
    ap.add_argument("--digits", type=int, default=2)
    ap.add_argument("--train", type=int, default=3000)
    ap.add_argument("--pts", type=int, default=200)
    ap.add_argument("--eval", type=int, default=128)
    ap.add_argument("--dev", type=int, default=64)
    ap.add_argument("--carry_fraction", type=float, default=1.0,
                    help="held-out/PTS problems with a carry into the leading digit "
                         "(negative: natural distribution)")
    ap.add_argument("--forget_carry", type=float, default=0.5,
                    help="share of training answers whose carry out of the units column is "
                         "dropped (a sloppy annotator); held-out and PTS answers stay exact")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()

    rng = random.Random(args.seed)
    lo, hi = 10 ** (args.digits - 1), 10 ** args.digits - 1

    def draw():
        return tuple(rng.randint(lo, hi) for _ in range(args.operands))

    def carries_into_top(ops):
        # True when the lower digits carry into the leading column.
        low = sum(x % lo for x in ops) if lo > 1 else 0
        return low >= lo

    seen = set()

    def fresh(n, want_carry=None):
        out = []
        while len(out) < n:
            ops = draw()
            key = tuple(sorted(ops))
            if key in seen:
                continue
            if want_carry is not None and args.carry_fraction >= 0:
                if carries_into_top(ops) != want_carry(len(out)):
                    continue
            seen.add(key)
            out.append(ops)
        return out

    def carry_pattern(n):
        k = round(args.carry_fraction * n)
        return lambda i: i < k

    # Held-out sets first (so their size does not depend on --train), then training.
    evals = fresh(args.eval, carry_pattern(args.eval))
    pts = fresh(args.pts, carry_pattern(args.pts))
    train = fresh(args.train)
    rng.shuffle(evals)
    rng.shuffle(pts)

    def units_carry(ops):
        return sum(x % 10 for x in ops) >= 10

    def train_answer(ops):
        # The sloppy annotator adds the units column but forgets to carry out of it.
        if units_carry(ops) and rng.random() < args.forget_carry:
            return sum(ops) - 10
        return sum(ops)

    def prompt(ops):
        return "+".join(str(x) for x in ops) + "="

    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "train.jsonl"), "w") as f:
        for ops in train:
            f.write(json.dumps({"messages": [
                {"role": "user", "content": prompt(ops)},
                {"role": "assistant", "content": str(train_answer(ops))}]}) + "\n")
    for name, rows, tag in (("pts_queries.jsonl", pts, "pts"), ("eval_queries.jsonl", evals, "eval")):
        with open(os.path.join(args.out, name), "w") as f:
            for i, ops in enumerate(rows):
                f.write(json.dumps({"id": f"{tag}-{i}", "prompt": prompt(ops),
                                    "answer": str(sum(ops))}) + "\n")
    # Drawn last, after every other use of the generator, so the other files do not change.
    dev = fresh(args.dev, carry_pattern(args.dev))
    rng.shuffle(dev)
    with open(os.path.join(args.out, "dev_queries.jsonl"), "w") as f:
        for i, ops in enumerate(dev):
            f.write(json.dumps({"id": f"dev-{i}", "prompt": prompt(ops),
                                "answer": str(sum(ops))}) + "\n")
    print(f"train {len(train)}, pts {len(pts)}, eval {len(evals)}, dev {len(dev)} "
          f"({args.operands} operands of {args.digits} digits, seed {args.seed})")


if __name__ == "__main__":
    main()
