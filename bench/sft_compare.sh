#!/usr/bin/env bash
# One SFT load on both sides, back to back: build/bin/sft_bench (align) then
# bench/sft_transformers.py (transformers, attn_implementation sdpa), and prints both tables.
# Both get the same arguments (sft_bench's: --preset/--config, --rows, --seq, --docs, --steps,
# --mode, --lora-rank, --device) and the same thread count.
#   bench/sft_compare.sh --config bench/phi3_52m/config.json --rows 1 --seq 4096 --docs 4 \
#     --steps 3 --mode full
# Needs build/bin/sft_bench and build/bin/align (scripts/build.sh sft_bench align).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
venv="$(scripts/setup.sh --quiet | tail -n 1)"
echo "load: $(uptime | sed 's/.*load average/load average/')"
build/bin/sft_bench "$@"
echo "load: $(uptime | sed 's/.*load average/load average/')"
"$venv/bin/python" bench/sft_transformers.py "$@"
