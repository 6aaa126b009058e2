#!/usr/bin/env bash
# Installs what align needs to build and test, only what is missing; fast when nothing is.
#   - Debian packages: compiler, CMake, Ninja, ccache, nlohmann/json, CLI11, GoogleTest, PCRE2,
#     Gloo (headers only: LibTorch carries the Gloo code but not its headers), libseccomp (the code
#     oracle's syscall filter) and bubblewrap (it runs candidate programs in their own namespaces).
#   - LibTorch from the PyPI torch wheel (pinned; CUDA 13.0 build) in a Python venv kept outside the
#     clone, at $ALIGN_CACHE_DIR/venv (default ~/.cache/align/venv), so every clone reuses it.
# Prints the venv path on its last line. Usage: scripts/setup.sh [--quiet]
set -euo pipefail

TORCH_VERSION=2.11.0
cache_dir="${ALIGN_CACHE_DIR:-$HOME/.cache/align}"
venv="$cache_dir/venv"
quiet=${1:-}
say() { [ "$quiet" = --quiet ] || echo "setup: $*" >&2; }

debs=(g++ cmake ninja-build ccache pkg-config python3-venv nlohmann-json3-dev libcli11-dev
      libgtest-dev libgmock-dev libpcre2-dev libgloo-dev libseccomp-dev bubblewrap
      libprotobuf-dev protobuf-compiler libboost-dev)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing Debian packages: ${missing[*]}"
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

stamp="$venv/.align-torch-$TORCH_VERSION"
if [ ! -f "$stamp" ]; then
  say "installing torch==$TORCH_VERSION into $venv (a few GB, once per machine)"
  mkdir -p "$cache_dir"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "torch==$TORCH_VERSION" numpy
  "$venv/bin/python" - "$TORCH_VERSION" <<'PY'
import sys, torch
want = sys.argv[1]
got = torch.__version__.split("+")[0]
if got != want:
    sys.exit(f"setup: expected torch {want}, found {torch.__version__}")
print(f"setup: torch {torch.__version__} (CUDA {torch.version.cuda})", file=sys.stderr)
PY
  touch "$stamp"
fi
echo "$venv"
