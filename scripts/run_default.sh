#!/usr/bin/env bash
# The main job on the bundled default. Until the SFT -> PTS -> DPO pipeline lands this runs the
# largest job that exists: build align, initialise a tiny Phi-4-architecture model with the bundled
# tokenizer, tokenize the example conversations and score them with teacher-forced log-probs.
# Outputs go to runs/default/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build.sh align
out=runs/default
mkdir -p "$out"
tokenizer=tests/golden/tokenizer/main
build/bin/align init --preset tiny --tokenizer "$tokenizer" --out "$out/model" --seed 0 --overwrite
build/bin/align tokenize --model "$out/model" --input examples/default/sequences.jsonl \
  --output "$out/tokens.jsonl"
build/bin/align logprobs --model "$out/model" --input examples/default/sequences.jsonl \
  --output "$out/logprobs.jsonl"
echo "tokens:   $out/tokens.jsonl"
echo "logprobs: $out/logprobs.jsonl"
python3 - "$out/logprobs.jsonl" <<'PY'
import json, sys
print(f"{'sequence':>8} {'tokens':>7} {'mean logprob':>13}")
for i, line in enumerate(open(sys.argv[1])):
    r = json.loads(line)
    lps = [x for x in r["logprobs"] if x is not None]
    mean = sum(lps) / len(lps) if lps else float("nan")
    print(f"{i:>8} {len(r['token_ids']):>7} {mean:>13.4f}")
PY
