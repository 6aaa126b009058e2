#!/usr/bin/env bash
# SFT -> eval -> PTS -> DPO -> eval on a real trained model, SmolLM2-135M-Instruct, exactly as
# transformers writes it (its own ChatML template, a vocabulary lacking 21 byte symbols), on the
# two-number addition task of examples/arith/ (examples/smollm2/README.md). Builds align and the
# model folder (tools/smollm2_folder.sh) if needed; outputs go to runs/smollm2/ (a rerun starts
# over). About 35 minutes on 2 CPU cores.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
scripts/build.sh align
tools/smollm2_folder.sh
model="${ALIGN_SMOLLM2_DIR:-${ALIGN_CACHE_DIR:-$HOME/.cache/align}/models/SmolLM2-135M-Instruct-phi3}"
rm -rf runs/smollm2/pipeline
build/bin/align pipeline --config examples/smollm2/pipeline.json --set "model.path=$model"
build/bin/align report runs/smollm2/pipeline
