#!/usr/bin/env bash
# One rollout load on both sides, back to back: build/bin/rollout_bench (align's engine) then
# bench/rollout_transformers.py (transformers generate()), and prints both tables. Both build a
# random model of the same shape in-process (--config FILE, or --preset NAME through a config.json
# that rollout_bench writes) and get the same load arguments (--prefixes, --samples, --completion,
# --new-tokens, --device, --dtype) and the same thread count.
#   bench/rollout_compare.sh --config bench/phi3_52m/config.json --samples 16 --new-tokens 64
# Needs build/bin/rollout_bench (scripts/build.sh rollout_bench).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
venv="$(scripts/setup.sh --quiet | tail -n 1)"
config="$(mktemp --suffix .json)"
trap 'rm -f "$config"' EXIT
echo "load: $(uptime | sed 's/.*load average/load average/')"
build/bin/rollout_bench --save-config "$config" "$@"
# transformers takes the shape from the saved config.json; drop the align-only flags.
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config|--preset|--layers|--kv-budget-tokens|--peak-gbs|--peak-tflops|--model) shift 2 ;;
    --decode-buckets|--cuda-graphs|--cascade-decode) shift ;;
    *) args+=("$1"); shift ;;
  esac
done
echo "load: $(uptime | sed 's/.*load average/load average/')"
"$venv/bin/python" bench/rollout_transformers.py --config "$config" "${args[@]}"
