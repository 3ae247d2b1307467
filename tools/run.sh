#!/usr/bin/env bash
# Builds lowbit if needed and runs it: `tools/run.sh` alone runs the main job on the bundled
# default model; any arguments are passed to the lowbit binary (`tools/run.sh info MODEL`).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh --target lowbit >/dev/null
if [ $# -eq 0 ]; then
  exec build/lowbit run
fi
exec build/lowbit "$@"
