#!/usr/bin/env bash
# The whole GPU check as one command, sized to finish within 9 minutes on a lent 16-core H100/H200
# machine. Steps, each with its log and a time cap (a step that fails or runs out is reported in
# the table and the next one still runs):
#   1. build     the targets below only, with every core (Release, CUDA architecture 90)
#   2. tests     the gpu-labelled tests: every CUDA kernel against its reference, the CUDA model and
#                engine paths, NCCL
#   3. rollout   bench/rollout_bench on a Phi-4-shaped random bf16 model built in-process on the GPU
#                (no 29 GB checkpoint): batch-1 greedy decode (against the HBM roofline) and the
#                PTS-shaped load (8 nested prefixes of a 512-token completion x 64 samples x 256 new),
#                then bench/rollout_transformers.py on the same shape and loads: generate() on the
#                same GPU
#   4. sft       bench/sft_bench: LoRA r16 SFT step, Phi-4 shape, 1 x 2048 tokens, activation
#                checkpointing: tokens/s and MFU
#   5. dpo       bench/dpo_bench: token-pair DPO step, Phi-4 shape (8 layers), chains vs sequences
#      grpo      bench/grpo_bench: a GRPO step (8 prompts x 8 generations x 64 new tokens, LoRA
#                r16) on bench/grpo_compare.sh's 52M model: seconds per step, sampled tokens/s
#   6. graphs    bench/rollout_bench --cuda-graphs: batch-1 decode with the decode step captured as
#                CUDA graphs per batch bucket (EngineOptions::cuda_graphs) and a smaller PTS-shaped
#                load (capture inside its time); last, so it takes only what the budget has left.
#                The dry run takes --decode-buckets instead (the same padded buffers, eager).
#   7. cascade   bench/rollout_bench --cascade-decode: the PTS-shaped load of step 3 with forks of one
#                prompt decoding in the shared-prefix form (EngineOptions::cascade_decode), against
#                step 3's eager figure: whether the cascade kernel pays on CUDA.
# Then one table on stdout and in $OUT/summary.md; the logs are $OUT/<step>.log ($OUT defaults to
# runs/gpu_check).
#
# --dry-run: the same steps on the CPU with the tiny preset and small loads, in the normal build/
# (CI runs it, so the script cannot rot before a GPU comes).
#
# On the GPU machine (no Debian packages, no network) the build needs, besides the device pack's
# usual headers, the packages `scripts/gpu_check.sh --print-debs` lists: pack them with
# EXTRA_DEBS="$(scripts/gpu_check.sh --print-debs)", carry .device, then run
#   source .device/env.sh && scripts/gpu_check.sh
# Boost is large (about 140 MB of headers): pruned from .device to the headers align includes by
# `scripts/gpu_check.sh --prune-device`, which also copies llama.cpp's Jinja engine sources (what
# scripts/setup.sh unpacked to ~/.cache/align/llama.cpp) to .device/llama.cpp for the build there.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

device_debs="pkg-config pkgconf pkgconf-bin libpkgconf3 libseccomp-dev libseccomp2
  libprotobuf-dev libprotobuf32 libprotobuf-lite32 libprotoc32 protobuf-compiler libboost1.74-dev
  zlib1g-dev"
mode=gpu
case "${1:-}" in
  --dry-run) mode=cpu ;;
  --print-debs) echo $device_debs; exit 0 ;;
  --prune-device)
    inc=.device/root/usr/include
    [ -d "$inc/boost" ] || { echo "gpu_check: no $inc/boost to prune" >&2; exit 1; }
    keep=$(echo '#include <boost/crc.hpp>' | g++ -x c++ -std=c++17 -M -I "$inc" - |
           tr ' \\' '\n\n' | grep "^$inc/boost/" | sort -u)
    find "$inc/boost" -type f | sort | comm -23 - <(echo "$keep") | xargs -r rm -f
    find "$inc/boost" -type d -empty -delete
    llama="${ALIGN_LLAMA_CPP_DIR:-${ALIGN_CACHE_DIR:-$HOME/.cache/align}/llama.cpp}"
    [ -d "$llama/common/jinja" ] || { echo "gpu_check: no $llama/common/jinja: run scripts/setup.sh" >&2; exit 1; }
    rm -rf .device/llama.cpp && mkdir -p .device/llama.cpp
    cp -rL "$llama/common" "$llama/LICENSE" .device/llama.cpp/
    du -sh .device | sed 's/^/gpu_check: .device is now /'
    exit 0 ;;
  "") ;;
  *) echo "usage: scripts/gpu_check.sh [--dry-run | --print-debs | --prune-device]" >&2; exit 2 ;;
esac

out="${OUT:-$root/runs/gpu_check}"
mkdir -p "$out"
jobs="$(nproc)"
targets=(rollout_bench sft_bench dpo_bench grpo_bench kernels_gpu_test model_gpu_test rollout_gpu_test
         nccl_gpu_test)
if [ "$mode" = cpu ]; then
  source scripts/env.sh
  build="${BUILD_DIR:-build}"
  py="$ALIGN_VENV/bin/python"
  dev=(--device cpu --dtype fp32)
  preset=tiny
  rollout_load=(--prefixes 2 --samples 4 --completion 64 --new-tokens 16)
  sft_load=(--rows 1 --seq 128 --steps 1 --lora-rank 16 --checkpointing)
  dpo_load=(--layers 2 --completions 2 --pivots 4 --prompt 16 --completion 32 --steps 1)
  grpo_model=bench/phi3_52m/config.json
  grpo_load=(--prompts 2 --generations 2 --new-tokens 8 --lora-rank 4 --steps 1)
  graphs=(--decode-buckets --prefixes 1 --samples 4 --completion 3 --new-tokens 16)
  caps=(build:1800 tests:300 rollout_align:120 rollout_transformers:120 sft:120 dpo:120 grpo:120
        rollout_graphs:120 rollout_cascade:120)
  budget=3600
else
  build="${BUILD_DIR:-build-gpu}"
  py=python3
  dev=(--device cuda --dtype bf16)
  preset=phi-4
  rollout_load=(--prefixes 8 --samples 64 --completion 512 --new-tokens 256)
  sft_load=(--rows 1 --seq 2048 --steps 3 --lora-rank 16 --checkpointing)
  dpo_load=(--layers 8 --completions 4 --pivots 8 --prompt 256 --completion 512 --steps 3)
  # GRPO on bench/grpo_compare.sh's model and load (TRL's side is not run here).
  grpo_model=bench/phi3_52m/config.json
  grpo_load=(--prompts 8 --generations 8 --new-tokens 64 --lora-rank 16 --steps 2)
  graphs=(--cuda-graphs --prefixes 2 --samples 64 --completion 512 --new-tokens 64)
  caps=(build:270 tests:60 rollout_align:75 rollout_transformers:90 sft:45 dpo:30 grpo:40
        rollout_graphs:40 rollout_cascade:75)
  budget=540
  export PKG_CONFIG_PATH="$root/.device/root/usr/lib/x86_64-linux-gnu/pkgconfig:$root/.device/root/usr/share/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  if [ -d .device/root ]; then export PKG_CONFIG_SYSROOT_DIR="$root/.device/root"; fi
  export PATH="$root/.device/root/usr/bin:$PATH"
  export ALIGN_LLAMA_CPP_DIR="${ALIGN_LLAMA_CPP_DIR:-$root/.device/llama.cpp}"
fi

start=$SECONDS
declare -A status seconds
cap_of() {
  local entry
  for entry in "${caps[@]}"; do
    if [ "${entry%%:*}" = "$1" ]; then echo "${entry#*:}"; fi
  done
}
# step NAME CMD...: runs CMD with its output in $out/NAME.log (and on stdout), capped at the
# smaller of the step's cap and what is left of the budget.
step() {
  local name=$1; shift
  local left=$((budget - (SECONDS - start))) cap
  cap=$(cap_of "$name")
  if [ "$left" -lt "$cap" ]; then cap=$left; fi
  echo "== gpu_check: $name (at most ${cap}s): $*"
  if [ "$cap" -le 0 ]; then
    status[$name]="skipped (budget spent)"; seconds[$name]=0; return 0
  fi
  local t0=$SECONDS rc=0
  timeout --kill-after=10 "$cap" "$@" 2>&1 | tee "$out/$name.log" || rc=$?
  seconds[$name]=$((SECONDS - t0))
  case $rc in
    0) status[$name]=ok ;;
    124|137) status[$name]="timed out after ${cap}s" ;;
    *) status[$name]="failed (exit $rc)" ;;
  esac
}

if [ "$mode" = cpu ]; then
  build_cmd=(scripts/build.sh "${targets[@]}")
else
  # Parquet with the machine's pyarrow when it has one, else off (nothing here reads Parquet).
  if pyarrow_dir=$(python3 -c 'import os, pyarrow; print(os.path.dirname(pyarrow.__file__))' 2>/dev/null) &&
     [ -f "$pyarrow_dir/include/arrow/util/config.h" ]; then
    parquet="-DALIGN_PYARROW_DIR=$pyarrow_dir"
  else
    parquet=-DALIGN_PARQUET=OFF
  fi
  build_cmd=(bash -c "[ -f '$build/build.ninja' ] || cmake -S . -B '$build' -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DALIGN_WERROR=OFF -DCMAKE_CUDA_ARCHITECTURES=90 -Wno-dev $parquet
    cmake --build '$build' -j $jobs --target ${targets[*]}")
fi
step build "${build_cmd[@]}"
bin="$build/bin"
config="$out/model_config.json"
if [ "${status[build]}" = ok ]; then
  step tests ctest --test-dir "$build" -L gpu --output-on-failure -j "$jobs"
  step rollout_align "$bin/rollout_bench" --preset "$preset" --save-config "$config" "${dev[@]}" \
    "${rollout_load[@]}"
  if [ -f "$config" ]; then
    step rollout_transformers env PYTHONUNBUFFERED=1 "$py" bench/rollout_transformers.py \
      --config "$config" "${dev[@]}" "${rollout_load[@]}"
  fi
  step sft "$bin/sft_bench" --preset "$preset" "${dev[@]}" "${sft_load[@]}"
  step dpo "$bin/dpo_bench" --preset "$preset" "${dev[@]}" "${dpo_load[@]}"
  step grpo "$bin/grpo_bench" --config "$grpo_model" --out "$out/grpo" "${dev[@]}" "${grpo_load[@]}"
  step rollout_graphs "$bin/rollout_bench" --preset "$preset" "${dev[@]}" "${graphs[@]}"
  step rollout_cascade "$bin/rollout_bench" --preset "$preset" "${dev[@]}" "${rollout_load[@]}" \
    --cascade-decode
fi

# The table: one row per step, with the figures each log ends with.
field() {  # field LOG PATTERN COLUMN: column COLUMN of the last line of LOG matching PATTERN
  if [ -f "$out/$1.log" ]; then
    grep -E "$2" "$out/$1.log" | tail -n 1 | awk -v c="$3" '{print $c}' || true
  fi
}
decode_a=$(field rollout_align '^batch-1 decode' 4)
decode_roof=$(field rollout_align '^batch-1 decode' 7)
pts_a=$(field rollout_align '^PTS ' 6)
decode_t=$(field rollout_transformers '^batch-1 decode' 4)
decode_g=$(field rollout_graphs '^batch-1 decode' 4)
decode_g_roof=$(field rollout_graphs '^batch-1 decode' 7)
captured=$(field rollout_graphs '^decode steps on bucket buffers' 12)
pts_c=$(field rollout_cascade '^PTS ' 6)
pts_t=$(field rollout_transformers '^PTS ' 6)
ratio() {
  if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2fx", a/b}'; else echo -; fi
}
sft_tps=$(field sft '^lora' 4)  # 'lora r16' is two fields
sft_tflops=$(field sft '^lora' 5)
sft_mfu=$(field sft '^lora' 6)
dpo_speedup=$(field dpo '^speed-up' 3)
grpo_step=$(field grpo '^align grpo' 3)
grpo_rate=$(field grpo '^align grpo' 7)
{
  echo "# GPU check ($mode): $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo
  echo "device: $( [ "$mode" = gpu ] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || uname -m ) · preset $preset · ${dev[*]}"
  echo
  echo "| step | status | seconds |"
  echo "|---|---|---|"
  for name in build tests rollout_align rollout_transformers sft dpo grpo rollout_graphs rollout_cascade; do
    echo "| $name | ${status[$name]:-not run} | ${seconds[$name]:--} |"
  done
  echo
  echo "| load | align | transformers | ratio |"
  echo "|---|---|---|---|"
  echo "| batch-1 decode tokens/s | ${decode_a:--} (${decode_roof:-n/a} of the roofline) | ${decode_t:--} | $(ratio "$decode_a" "$decode_t") |"
  echo "| PTS-shaped load tokens/s (${rollout_load[*]}) | ${pts_a:--} | ${pts_t:--} | $(ratio "$pts_a" "$pts_t") |"
  echo "| LoRA SFT (${sft_load[*]}) | ${sft_tps:--} tokens/s, ${sft_tflops:--} TFLOP/s, MFU ${sft_mfu:--} | | |"
  echo "| token-pair DPO, chains vs sequences (pairs/s) | ${dpo_speedup:--} | | |"
  echo "| GRPO step on $grpo_model (${grpo_load[*]}) | ${grpo_step:--} s/step, ${grpo_rate:--} sampled tokens/s | | |"
  echo "| PTS-shaped load tokens/s, cascade decode vs eager (align) | ${pts_c:--} | ${pts_a:--} | $(ratio "$pts_c" "$pts_a") |"
  echo "| batch-1 decode tokens/s, ${graphs[0]#--} (graphs captured: ${captured:--}) | ${decode_g:--} (${decode_g_roof:-n/a} of the roofline) | ${decode_t:--} | $(ratio "$decode_g" "$decode_t") |"
  echo
  echo "total: $((SECONDS - start)) s"
} | tee "$out/summary.md"

# Exit status: 0 only when every step ran and every figure of the table was found.
for name in build tests rollout_align rollout_transformers sft dpo grpo rollout_graphs rollout_cascade; do
  [ "${status[$name]:-}" = ok ] || exit 1
done
for figure in "$decode_a" "$decode_t" "$pts_a" "$pts_t" "$sft_tps" "$dpo_speedup" "$grpo_step" "$decode_g" "$pts_c"; do
  [ -n "$figure" ] || { echo "gpu_check: a figure is missing from the logs in $out" >&2; exit 1; }
done
