#!/usr/bin/env bash
# Installs what is missing, configures once and builds. The align binary lands at build/bin/align.
# Usage: scripts/build.sh [target...]   (all targets by default; BUILD_DIR overrides ./build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
build="${BUILD_DIR:-build}"
if [ ! -f "$build/build.ninja" ]; then
  mkdir -p "$build"
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DALIGN_WERROR="${ALIGN_WERROR:-ON}" \
    -Wno-dev > "$build/configure.log" 2>&1 || { cat "$build/configure.log"; exit 1; }
fi
# One build at a time per folder (the README test runs scripts that build while ctest runs).
if [ $# -gt 0 ]; then
  flock "$build/.build.lock" cmake --build "$build" --target "$@"
else
  flock "$build/.build.lock" cmake --build "$build"
fi
