# Sourced by the build scripts: runs setup and exports the paths CMake and ccache need.
# Usage: source scripts/env.sh
_align_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
_align_venv="$("$_align_root/scripts/setup.sh" "${ALIGN_SETUP_FLAGS:---quiet}" | tail -n 1)" || return 1
_align_site="$(echo "$_align_venv"/lib/python3*/site-packages)"
export ALIGN_VENV="$_align_venv"
export CMAKE_PREFIX_PATH="$_align_site/torch/share/cmake${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
export TORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-9.0}"
# llama.cpp's Jinja engine, unpacked by setup.sh (a GPU machine without network brings its own).
export ALIGN_LLAMA_CPP_DIR="${ALIGN_LLAMA_CPP_DIR:-${ALIGN_CACHE_DIR:-$HOME/.cache/align}/llama.cpp}"
export CCACHE_BASEDIR="$_align_root"
export CCACHE_DIR="${CCACHE_DIR:-${ALIGN_CACHE_DIR:-$HOME/.cache/align}/ccache}"
export CCACHE_SLOPPINESS="${CCACHE_SLOPPINESS:-include_file_mtime,include_file_ctime,time_macros}"
[ -x /usr/local/cuda/bin/nvcc ] && case ":$PATH:" in *:/usr/local/cuda/bin:*) ;; *) export PATH="$PATH:/usr/local/cuda/bin" ;; esac
unset _align_root _align_venv _align_site
