#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (GPU tests skip themselves without a GPU).
# Usage: scripts/test.sh [ctest args...]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
scripts/build.sh
# Test-only Python packages, into the same venv, skipped when present: the TensorBoard reader that
# checks align's event files, and transformers for the competitor side of scripts/gpu_check.sh
# --dry-run (pinned as in tools/make_golden.sh).
source scripts/env.sh
"$ALIGN_VENV/bin/python" -c "import tensorboard" 2>/dev/null ||
  "$ALIGN_VENV/bin/pip" install -q --disable-pip-version-check "tensorboard==2.20.0"
"$ALIGN_VENV/bin/python" -c "import transformers" 2>/dev/null ||
  "$ALIGN_VENV/bin/pip" install -q --disable-pip-version-check "transformers==5.23.0"
# Tests run in parallel (one per core), so each uses one LibTorch thread: more threads than cores
# makes LibTorch's thread pool spin and slows every test several-fold.
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" "$@"
