#!/usr/bin/env bash
# GRPO side by side on one machine: build/bin/grpo_bench (align grpo) then bench/grpo_trl.py (TRL's
# GRPOTrainer) on the same random model folder, prompts and settings (grpo_bench's arguments go to
# both), the same thread count; prints both rows and the ratio of seconds per step.
#   bench/grpo_compare.sh --config bench/phi3_52m/config.json --prompts 8 --generations 8 \
#     --new-tokens 64 --lora-rank 16 --steps 3
# Needs build/bin/grpo_bench (scripts/build.sh grpo_bench); the model folder goes to
# $GRPO_BENCH_DIR (default: a temporary folder, removed after).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
venv="$(scripts/setup.sh --quiet | tail -n 1)"
dir="${GRPO_BENCH_DIR:-}"
if [ -z "$dir" ]; then
  dir="$(mktemp -d)"
  trap 'rm -rf "$dir"' EXIT
fi
echo "load: $(uptime | sed 's/.*load average/load average/')"
build="${BUILD_DIR:-build}"
"$build/bin/grpo_bench" --out "$dir" "$@" 2>"$dir/align.log" | tee "$dir/align.txt" ||
  { tail -n 20 "$dir/align.log"; exit 1; }
echo "load: $(uptime | sed 's/.*load average/load average/')"
"$venv/bin/python" bench/grpo_trl.py --out "$dir" "$@" 2>"$dir/trl.log" | tee "$dir/trl.txt" ||
  { tail -n 20 "$dir/trl.log"; exit 1; }
a=$(grep '^align grpo' "$dir/align.txt" | awk '{print $3}')
t=$(grep '^TRL GRPOTrainer' "$dir/trl.txt" | awk '{print $3}')
awk -v a="$a" -v t="$t" 'BEGIN { printf "speed-up (TRL s/step / align s/step): %.2fx\n", t / a }'
