#!/usr/bin/env bash
# The main job on the bundled default: build align, initialise a tiny Phi-4-architecture model with
# the bundled tokenizer, and run the whole pipeline on the toy task of examples/toy/ (SFT from
# scratch -> eval -> PTS -> DPO on the PTS pairs -> eval), printing the summary table (success
# rate on held-out prompts before and after DPO, pairs found, time per stage) and the HTML report
# runs/default/pipeline/report.html (align report).
# Outputs go to runs/default/ (a rerun starts over).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build.sh align
out=runs/default
rm -rf "$out"
mkdir -p "$out"
build/bin/align init --preset tiny --tokenizer tests/golden/tokenizer/main --out "$out/model" \
  --seed 3 --dtype fp32
build/bin/align pipeline --config examples/toy/pipeline.json
build/bin/align report runs/default/pipeline
