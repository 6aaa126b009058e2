#!/usr/bin/env bash
# The main job on the bundled default: build align, initialise a tiny Phi-4-architecture model
# (examples/arith/model_config.json) with the arithmetic tokenizer, and run the whole pipeline on
# the two-number addition task of examples/arith/ (SFT from scratch on answers from an annotator
# who forgets half the carries -> eval -> PTS with the exact-answer oracle -> DPO on the PTS pairs
# -> eval), printing the summary table (success rate on held-out problems before and after DPO,
# pairs found, time per stage) and the HTML report runs/default/pipeline/report.html.
# Outputs go to runs/default/ (a rerun starts over).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build.sh align
out=runs/default
rm -rf "$out"
mkdir -p "$out"
build/bin/align init --config examples/arith/model_config.json --tokenizer examples/arith/tokenizer \
  --out "$out/model" --seed 1 --dtype fp32
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" build/bin/align pipeline --config examples/arith/pipeline.json
build/bin/align report runs/default/pipeline
