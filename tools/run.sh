#!/usr/bin/env bash
# Builds lowbit if needed and runs it.
#   tools/run.sh            the main job on the bundled default model and data (assets/):
#                           smoke test, FP32 COCO eval, calibration tensor, INT8 and FP8
#                           quantization, eval of each, into runs/<timestamp>/
#   tools/run.sh ARGS...    runs build/lowbit ARGS... (e.g. `tools/run.sh info MODEL`)
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh --target lowbit >/dev/null
if [ $# -gt 0 ]; then
  exec build/lowbit "$@"
fi

lb=build/lowbit
root="runs/$(date +%Y-%m-%d_%H-%M-%S)"
mkdir -p "$root/onnx"
echo "run root: $root" >&2
$lb smoke --out "$root/baseline-onnx" >/dev/null
$lb eval --max-images 0 --out "$root/baseline-coco/metrics.json" >/dev/null
$lb calib --list assets/calib/calib100.txt --imgsz 320 --out "$root/calib/calib.npy"
for mode in int8 fp8; do
  $lb quantize --mode "$mode" --calib "$root/calib/calib.npy" --out "$root/onnx/model-$mode-qdq.onnx"
  $lb eval "$root/onnx/model-$mode-qdq.onnx" --max-images 0 --out "$root/$mode-coco/metrics.json" >/dev/null
done
echo
printf '%-10s %10s %10s %12s\n' variant mAP50-95 mAP50 latency_ms
for v in baseline int8 fp8; do
  f="$root/$v-coco/metrics.json"
  python3 - "$v" "$f" <<'PY'
import json, sys
m = json.load(open(sys.argv[2]))
print(f"{sys.argv[1]:<10} {m['metrics']['mAP_50_95']:>10.4f} {m['metrics']['mAP_50']:>10.4f} "
      f"{m['latency']['median_ms']:>12.2f}")
PY
done
