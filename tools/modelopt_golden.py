#!/usr/bin/env python3
"""Writes tests/golden/modelopt-bundled-{int8,fp8}.json: NVIDIA ModelOpt's Q/DQ placement and
scales for the bundled model, the golden that tests/py/test_modelopt_golden.py compares lowbit
with (CI never installs ModelOpt; this tool is run once, by hand, and its output committed).

Run it with the Python of a venv that has ModelOpt (git-ignored .venv-modelopt):

  python3 -m venv .venv-modelopt
  .venv-modelopt/bin/pip install --no-deps nvidia-modelopt==0.47.0
  .venv-modelopt/bin/pip install "onnx~=1.21.0" "onnxruntime~=1.24.2" onnx-graphsurgeon \\
      "onnxconverter-common~=1.16.0" ml_dtypes numpy scipy pydantic rich tqdm PyYAML omegaconf \\
      regex packaging onnxslim polygraphy safetensors nvidia-ml-py "pulp<4" setuptools onnxscript
  .venv-modelopt/bin/python tools/modelopt_golden.py --lowbit build/lowbit

(ModelOpt's ONNX path does not need torch or a GPU: onnxruntime's CPU provider calibrates;
--no-deps skips torch and onnxruntime-gpu, which its metadata asks for.)

The subject is assets/*-raw.onnx; calibration data is the first CALIB_IMAGES images of
assets/calib/calib100.txt letterboxed to 320 by `lowbit calib` (bit-identical to cv2 +
Ultralytics), with the `max` method in both tools, so that the scales are comparable: ModelOpt's
`entropy` is a different algorithm from TensorRT's that lowbit implements (README "Calibration
methods"). High precision stays float32.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "py"))
import qdq_summary  # noqa: E402

CALIB_IMAGES = 16
MODEL = os.path.join(ROOT, "assets", "shapes-yolov10m-w0p1875-raw.onnx")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "lowbit"))
    ap.add_argument("--modes", nargs="+", default=["int8", "fp8"])
    ap.add_argument("--out-dir", default=os.path.join(ROOT, "tests", "golden"))
    args = ap.parse_args()

    import numpy as np
    import onnx
    import modelopt
    from modelopt.onnx.quantization import quantize

    with tempfile.TemporaryDirectory(prefix="lowbit-modelopt-") as tmp:
        calib = os.path.join(tmp, "calib.npy")
        subprocess.run([args.lowbit, "calib", "--list",
                        os.path.join(ROOT, "assets", "calib", "calib100.txt"), "--imgsz", "320",
                        "--max-images", str(CALIB_IMAGES), "--out", calib], check=True)
        data = np.load(calib)
        for mode in args.modes:
            out = os.path.join(tmp, f"modelopt-{mode}.onnx")
            quantize(onnx_path=MODEL, quantize_mode=mode, calibration_data=data,
                     calibration_method="max", calibration_eps=["cpu"],
                     high_precision_dtype="fp32", output_path=out)
            golden = {
                "tool": f"nvidia-modelopt {modelopt.__version__}",
                "command": "tools/modelopt_golden.py",
                "model": os.path.relpath(MODEL, ROOT),
                "mode": mode,
                "calibration": {"method": "max", "images": CALIB_IMAGES, "imgsz": 320,
                                "list": "assets/calib/calib100.txt"},
                "inputs": qdq_summary.summarize(onnx.load(out)),
            }
            path = os.path.join(args.out_dir, f"modelopt-bundled-{mode}.json")
            tmp_json = path + ".tmp"
            with open(tmp_json, "w") as f:
                json.dump(golden, f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(tmp_json, path)
            print(f"{path}: {len(golden['inputs'])} quantized inputs", file=sys.stderr)


if __name__ == "__main__":
    main()
