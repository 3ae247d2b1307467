#!/usr/bin/env python3
"""Output agreement of lowbit with ONNX Runtime on models with a fixed input shape.

  .venv/bin/python tools/speed_check.py [--lowbit build/lowbit] MODEL.onnx ...

Runs each model on one seeded input in [0, 1) with both engines and prints, per output,
max |lowbit - ort| / max |ort|; exits 1 if any exceeds --tol (default 1e-4). Timing: use
bench/engine_bench.py on the same models.
"""
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--lowbit", default=os.environ.get("LOWBIT_BIN", "build/lowbit"))
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    bad = False
    for model in args.models:
        sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        inp = sess.get_inputs()[0]
        x = np.random.default_rng(0).random(inp.shape, dtype=np.float32)
        ref = sess.run(None, {inp.name: x})
        with tempfile.TemporaryDirectory() as d:
            np.save(f"{d}/x.npy", x)
            r = subprocess.run([args.lowbit, "smoke", str(model), "--input", f"{d}/x.npy",
                                "--runs", "1", "--warmup", "0", "--out", f"{d}/o",
                                "--save-outputs"], capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{model.name}: lowbit failed:\n{r.stderr}")
                bad = True
                continue
            for i, want in enumerate(ref):
                got = np.load(f"{d}/o/outputs/{i}.npy")
                err = float(np.max(np.abs(got - want)) / max(1e-30, np.max(np.abs(want))))
                ok = err <= args.tol
                bad |= not ok
                print(f"{model.name} output {i} {list(want.shape)}: rel err {err:.2e} "
                      f"{'ok' if ok else 'FAIL'}")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
