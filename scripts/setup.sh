#!/usr/bin/env bash
# Installs what align needs to build and test, only what is missing; fast when nothing is.
#   - Debian packages: compiler, CMake, Ninja, ccache, nlohmann/json, CLI11, GoogleTest, PCRE2,
#     Gloo (headers only: LibTorch carries the Gloo code but not its headers), libseccomp (the code
#     oracle's syscall filter) and bubblewrap (it runs candidate programs in their own namespaces).
#   - LibTorch from the PyPI torch wheel (pinned; CUDA 13.0 build) in a Python venv kept outside the
#     clone, at $ALIGN_CACHE_DIR/venv (default ~/.cache/align/venv), so every clone reuses it.
#   - Apache Arrow's C++ Parquet reader (libarrow, libparquet and their headers) from the PyPI
#     pyarrow wheel (pinned), in the same venv; it reads Parquet datasets (docs/datasets.md).
#   - llama.cpp's Jinja engine (common/jinja, MIT) and its published chat templates
#     (models/templates), from the source distribution of the pinned PyPI package
#     llama-cpp-python, unpacked to $ALIGN_CACHE_DIR/llama.cpp (the chat templates of
#     data/chat_template.h run on it: docs/chat_formats.md).
# Prints the venv path on its last line. Usage: scripts/setup.sh [--quiet]
set -euo pipefail

TORCH_VERSION=2.11.0
PYARROW_VERSION=26.0.1
LLAMA_CPP_PYTHON_VERSION=0.3.36
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
# pyarrow's wheel ships libarrow.so.NNNN, libparquet.so.NNNN and include/ (CMakeLists.txt links
# them); checked by its dist-info folder, so a run with it in place starts no Python.
if ! compgen -G "$venv/lib/python3*/site-packages/pyarrow-$PYARROW_VERSION.dist-info" >/dev/null; then
  say "installing pyarrow==$PYARROW_VERSION into $venv (Arrow's C++ Parquet reader, once)"
  "$venv/bin/pip" install -q --disable-pip-version-check "pyarrow==$PYARROW_VERSION"
fi
# llama.cpp's sources as llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION ships them; only the files
# align compiles or tests with are kept. $cache_dir/llama.cpp links to the pinned version.
llama_dir="$cache_dir/llama-cpp-python-$LLAMA_CPP_PYTHON_VERSION"
if [ ! -f "$llama_dir/.complete" ]; then
  say "fetching llama.cpp's Jinja engine (llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION sources, once)"
  tmp="$(mktemp -d "$cache_dir/.llama-cpp.XXXXXX")"
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$tmp"
  top="llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION/vendor/llama.cpp"
  tar -xzf "$tmp/llama_cpp_python-$LLAMA_CPP_PYTHON_VERSION.tar.gz" -C "$tmp" \
    "$top/LICENSE" "$top/common/jinja" "$top/common/json.h" "$top/common/json.cpp" \
    "$top/common/unicode.h" "$top/common/unicode.cpp" "$top/models/templates"
  rm -rf "$llama_dir"
  mkdir -p "$llama_dir"
  mv "$tmp/$top" "$llama_dir/llama.cpp"
  rm -rf "$tmp"
  touch "$llama_dir/.complete"
fi
ln -sfn "$llama_dir/llama.cpp" "$cache_dir/llama.cpp"
echo "$venv"
