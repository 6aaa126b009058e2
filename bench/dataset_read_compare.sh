#!/usr/bin/env bash
# Reading a Parquet text dataset, align beside the `datasets` package, in one command: writes the
# data once (bench/dataset_read_datasets.py write: N MB of text saved by datasets in push_to_hub's
# layout, kept in $ALIGN_CACHE_DIR/bench/), reads the files once so both sides start from the page
# cache, then prints one table: build/bin/dataset_read_bench (every record as align's loaders get
# it) and datasets' load_dataset, load_dataset + every row, and streaming.
#   bench/dataset_read_compare.sh [--mb 1000]
# Needs build/bin/dataset_read_bench (scripts/build.sh dataset_read_bench); installs the pinned
# datasets into the venv when it is missing.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
mb=1000
[ "${1:-}" = --mb ] && mb="$2"
venv="$(scripts/setup.sh --quiet | tail -n 1)"
"$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('datasets') != '5.2.0')" \
  2>/dev/null || "$venv/bin/pip" install -q --disable-pip-version-check datasets==5.2.0
dir="${ALIGN_CACHE_DIR:-$HOME/.cache/align}/bench/parquet-text-${mb}mb"
if [ ! -f "$dir/.complete" ]; then
  "$venv/bin/python" bench/dataset_read_datasets.py write --dir "$dir" --mb "$mb"
  touch "$dir/.complete"
fi
cat "$dir"/data/*.parquet > /dev/null
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), $(nproc) cores; pyarrow $("$venv/bin/python" -c 'import pyarrow; print(pyarrow.__version__)'), datasets 5.2.0"
echo "load before: $(uptime | sed 's/.*load average/load average/')"
build/bin/dataset_read_bench "$dir"
"$venv/bin/python" bench/dataset_read_datasets.py read --dir "$dir" | cat
echo "load after: $(uptime | sed 's/.*load average/load average/')"
