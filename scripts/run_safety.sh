#!/usr/bin/env bash
# The safety example of examples/safety/: build align, initialise a tiny Phi-4-architecture model
# with the bundled tokenizer, and run the whole pipeline (SFT from scratch on deliberately noisy
# refusal data -> eval -> PTS -> DPO on the PTS pairs -> eval), printing the summary table (refusal
# rate on held-out harmful requests and over-refusal on held-out benign ones before and after DPO,
# pairs found, time per stage) and writing the HTML report runs/safety/pipeline/report.html.
# Outputs go to runs/safety/ (a rerun starts over).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build.sh align
out=runs/safety
rm -rf "$out"
mkdir -p "$out"
build/bin/align init --preset tiny --tokenizer tests/golden/tokenizer/main --out "$out/model" \
  --seed 3 --dtype fp32
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" build/bin/align pipeline --config examples/safety/pipeline.json
build/bin/align report runs/safety/pipeline
