#!/usr/bin/env bash
# The main job on the bundled default. Until the SFT -> PTS -> DPO pipeline lands this runs the
# largest job that exists: build align, initialise a tiny Phi-4-architecture model with the bundled
# tokenizer, fine-tune it (full SFT on CPU) on the bundled arithmetic conversations, and score the
# example sequences with the base and the fine-tuned model. Outputs go to runs/default/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build.sh align
out=runs/default
mkdir -p "$out"
tokenizer=tests/golden/tokenizer/main
build/bin/align init --preset tiny --tokenizer "$tokenizer" --out "$out/model" --seed 0 --overwrite
rm -rf "$out/sft"
build/bin/align sft --config examples/sft/tiny_cpu.json \
  --set model.path="$out/model" --set output.dir="$out/sft"
for name in model sft/model; do
  build/bin/align logprobs --model "$out/$name" --input examples/sft/eval.jsonl \
    --output "$out/${name//\//-}-eval-logprobs.jsonl"
done
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
def mean_assistant_logprob(path):
    total = count = 0
    for line in open(path):
        r = json.loads(line)
        for lp, m in zip(r["logprobs"], r["assistant_mask"]):
            if m and lp is not None:
                total += lp
                count += 1
    return total / count
metrics = [json.loads(l) for l in open(f"{out}/sft/metrics.jsonl")]
print(f"\nSFT: {len(metrics)} steps, loss {metrics[0]['loss']:.3f} -> {metrics[-1]['loss']:.3f}, "
      f"eval loss {metrics[-1].get('eval_loss', float('nan')):.3f}")
print(f"{'model':<16} {'mean log-prob of assistant tokens (eval set)':>44}")
for name, path in [("base", f"{out}/model-eval-logprobs.jsonl"),
                   ("after SFT", f"{out}/sft-model-eval-logprobs.jsonl")]:
    print(f"{name:<16} {mean_assistant_logprob(path):>44.4f}")
PY
