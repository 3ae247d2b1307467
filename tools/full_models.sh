#!/usr/bin/env bash
# Makes tests/models/full/ (the full-width YOLOv10m pair, git-ignored) so that the full-size
# tests run. The files must match tests/models/full.sha256 (committed; the export is
# byte-deterministic for a given seed and tool versions, tests/models/README.md).
#
#   1. tests/models/full/ already matches            -> nothing to do
#   2. the cache has a matching copy                  -> copied from there
#      (${LOWBIT_CACHE_DIR:-~/.cache/lowbit}/full-<manifest hash>/)
#   3. otherwise: tools/setup_train.sh (Debian's python3-torch + the pinned Ultralytics in
#      .venv-train), tools/export_fixtures.py --full into a scratch folder, checked against the
#      manifest, then moved into place and into the cache.
# Exit status 1 when the export does not reproduce the manifest (nothing is installed then).
set -euo pipefail
cd "$(dirname "$0")/.."

MANIFEST=tests/models/full.sha256
DEST=tests/models/full
key=$(sha256sum "$MANIFEST" | cut -c1-12)
CACHE="${LOWBIT_CACHE_DIR:-$HOME/.cache/lowbit}/full-$key"

matches() {  # matches DIR: every file of the manifest in DIR has its hash
  local dir=$1
  (cd "$dir/.." 2>/dev/null && sha256sum --quiet --check --status "$OLDPWD/$MANIFEST") \
    2>/dev/null
}

if [ -d "$DEST" ] && matches "$DEST"; then
  echo "full_models: $DEST is up to date" >&2
  exit 0
fi

install_from() {  # install_from DIR: atomic replace of $DEST by a copy of DIR
  local src=$1 tmp
  tmp=$(mktemp -d tests/models/.full.XXXXXX)
  chmod 755 "$tmp"
  cp "$src"/*.onnx "$tmp"/
  rm -rf "$DEST.old"
  [ -e "$DEST" ] && mv "$DEST" "$DEST.old"
  mv "$tmp" "$DEST"
  rm -rf "$DEST.old"
}

if [ -d "$CACHE/full" ] && matches "$CACHE/full"; then
  install_from "$CACHE/full"
  echo "full_models: $DEST copied from $CACHE" >&2
  exit 0
fi

echo "full_models: exporting the full-width pair (a few minutes)" >&2
tools/setup_train.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/lowbit-full.XXXXXX")
trap 'rm -rf "$work"' EXIT
.venv-train/bin/python tools/export_fixtures.py --full --models-dir "$work" > "$work/report.json"
if ! matches "$work/full"; then
  echo "full_models: the export does not match $MANIFEST:" >&2
  (cd "$work" && sha256sum full/*.onnx) >&2
  exit 1
fi
# The node lists the export writes must equal the committed ones.
for f in yolov10m-full.nodes.txt yolov10m-full-raw.nodes.txt; do
  cmp -s "$work/$f" "tests/models/$f" || { echo "full_models: $f differs" >&2; exit 1; }
done
install_from "$work/full"
if mkdir -p "$CACHE" 2>/dev/null; then
  rm -rf "$CACHE/full.tmp" && cp -r "$work/full" "$CACHE/full.tmp" && rm -rf "$CACHE/full" &&
    mv "$CACHE/full.tmp" "$CACHE/full" || echo "full_models: could not fill the cache" >&2
fi
echo "full_models: $DEST exported and checked" >&2
