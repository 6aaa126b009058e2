#!/usr/bin/env bash
# Dev-only: renders an `align report` page in headless Chromium and prints the screenshot's path.
# Usage: tools/check_report.sh RUN_DIR_OR_HTML [OUT.png]
#   RUN_DIR: runs `align report RUN_DIR` first (build/bin/align, or $ALIGN) and renders RUN_DIR/report.html.
#   HTML:    renders that file.
# Installs Debian `chromium` with apt-get when it is missing (as root; says so first). Rendering runs
# with networking irrelevant: the page is self-contained, so a blank or broken screenshot is a bug.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${1:?usage: tools/check_report.sh RUN_DIR_OR_HTML [OUT.png]}"
if [ -d "$target" ]; then
  align="${ALIGN:-$root/build/bin/align}"
  echo "+ $align report $target" >&2
  "$align" report "$target" >&2
  html="$target/report.html"
else
  html="$target"
fi
html="$(cd "$(dirname "$html")" && pwd)/$(basename "$html")"
png="${2:-${html%.html}.png}"

browser="$(command -v chromium || command -v chromium-browser || true)"
if [ -z "$browser" ]; then
  echo "+ apt-get update && apt-get install -y chromium   (chromium not found)" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
  browser="$(command -v chromium)"
fi

echo "+ $browser --headless --no-sandbox --disable-gpu --screenshot=$png --window-size=1200,2400 file://$html" >&2
rm -f "$png"
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$png" \
  --window-size=1200,2400 "file://$html" >&2 2>/dev/null || true
if [ ! -s "$png" ]; then
  echo "check_report: chromium wrote no screenshot for $html" >&2
  exit 1
fi
echo "$png"
