#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (GPU tests skip themselves without a GPU).
# Usage: scripts/test.sh [ctest args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build.sh
# Test-only Python packages, into the same venv, skipped when that version is there: the
# TensorBoard reader that checks align's event files, transformers for the competitor side of
# scripts/gpu_check.sh --dry-run (pinned as in tools/make_golden.sh), peft, which loads the
# LoRA adapter of the SmolLM2 tests, and gguf, the independent GGUF reader of the GGUF tests
# (tools/gguf_check.py; pinned as in tools/smollm2_folder.sh).
source scripts/env.sh
need() {
  "$ALIGN_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" \
    2>/dev/null || "$ALIGN_VENV/bin/pip" install -q --disable-pip-version-check "$1==$2"
}
need tensorboard 2.20.0
need transformers 5.23.0
need peft 0.21.2
need gguf 0.19.0
# The SmolLM2-135M-Instruct test model (tests/smollm2/, docs/smollm2.md): built once per machine
# into the cache (about 40 s, a 98 MB download), then a stamp check.
tools/smollm2_folder.sh
# Tests run in parallel (one per core), so each uses one LibTorch thread: more threads than cores
# makes LibTorch's thread pool spin and slows every test several-fold.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" "$@"
