#!/usr/bin/env bash
# Builds lowbit if needed and runs it.
#   tools/run.sh            the main job: `lowbit run` on the bundled default model and data
#                           (assets/): smoke test, FP32 eval, calibration, INT8 (+ head
#                           excluded), sensitivity, top-K schemes, FP8/INT8 candidates, their
#                           evals and the comparison, into runs/<timestamp>/ (resumable)
#   tools/run.sh ARGS...    runs build/lowbit ARGS... (e.g. `tools/run.sh info MODEL`,
#                           `tools/run.sh run --root runs/mine` to resume a run)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh --target lowbit >/dev/null
if [ $# -gt 0 ]; then
  exec build/lowbit "$@"
fi
exec build/lowbit run
