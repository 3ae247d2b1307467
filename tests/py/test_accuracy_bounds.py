"""Accuracy bounds that fail when scales are wrong.

Every other quantization test compares lowbit's engine with ONNX Runtime on a model lowbit wrote,
which stays green if the scales themselves are wrong. Here each INT8 and FP8 model of the bundled
model (raw head), for every calibration method, must stay within a stated distance of FP32:

- output MSE: mean squared difference of the raw [1,74,2100] output from FP32, both run in ONNX
  Runtime (not lowbit's engine) on VAL_IMAGES letterboxed val images;
- mAP50-95 drop: `lowbit eval` of the quantized model against FP32 on the first EVAL_IMAGES val
  images.

The bounds are the values measured on these subsets (MEASURED below; the numbers are
deterministic up to the engines' float rounding) with a margin: output MSE between the measured
value / 1.2 and 1.2x it plus 0.001, and an mAP drop at most the measured one plus 0.03.
Per-tensor weight scales instead of per-channel (INT8 mse: 0.039 instead of 0.026), or a method
silently replaced by another, moves at least one row past its bound.
"""
import json
import os
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ASSETS = os.path.join(SRC, "assets")
MODEL = os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx")
CALIB_IMAGES = 32
VAL_IMAGES = 16
EVAL_IMAGES = 60

# Measured (method, mode) -> (output MSE vs FP32, mAP50-95 drop vs FP32) on the subsets above
# (this test's own printout, `pytest -s`).
MEASURED = {
    ("mse", "int8"): (0.02647, 0.0057),
    ("entropy", "int8"): (0.17301, 0.1027),
    ("max", "int8"): (0.06241, 0.0046),
    ("percentile", "int8"): (0.03194, 0.0125),
    ("mse", "fp8"): (0.03032, -0.0014),
    ("entropy", "fp8"): (0.17417, 0.1007),
    ("max", "fp8"): (0.02915, 0.0022),
    ("percentile", "fp8"): (0.04147, 0.0127),
}
MSE_FACTOR, MSE_ABS = 1.2, 0.001
DROP_MARGIN = 0.03


def lowbit(*args):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"lowbit {' '.join(map(str, args))}:\n{r.stderr}\n{r.stdout}"
    return r


def ort_outputs(path, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return np.concatenate([s.run(None, {"images": x[i:i + 1]})[0] for i in range(x.shape[0])])


def evaluate(path, out):
    lowbit("eval", path, "--max-images", EVAL_IMAGES, "--warmup-runs", 0, "--quiet", "--out", out)
    return json.loads(out.read_text())["metrics"]["mAP_50_95"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("accuracy")
    lowbit("calib", "--list", os.path.join(ASSETS, "calib", "calib100.txt"), "--imgsz", 320,
           "--max-images", CALIB_IMAGES, "--out", d / "calib.npy")
    ann = json.loads(open(os.path.join(ASSETS, "val", "instances_val.json")).read())
    names = sorted(im["file_name"] for im in ann["images"])[:VAL_IMAGES]
    (d / "val.txt").write_text("".join(os.path.join(ASSETS, "val", "images", n) + "\n"
                                       for n in names))
    lowbit("calib", "--list", d / "val.txt", "--imgsz", 320, "--out", d / "val.npy")
    x = np.load(d / "val.npy")
    assert x.shape == (VAL_IMAGES, 3, 320, 320)
    return {"dir": d, "x": x, "y": ort_outputs(MODEL, x),
            "map": evaluate(MODEL, d / "fp32.json")}


CASES = [(m, mode) for mode in ("int8", "fp8") for m in ("mse", "entropy", "max", "percentile")]


def measure(base, method, mode):
    d = base["dir"]
    q = d / f"{method}-{mode}.onnx"
    lowbit("quantize", MODEL, "--mode", mode, "--calib", d / "calib.npy",
           "--calibration-method", method, "--out", q)
    mse = float(np.mean((ort_outputs(q, base["x"]).astype(np.float64) - base["y"]) ** 2))
    drop = base["map"] - evaluate(q, d / f"{method}-{mode}.json")
    return mse, drop


def test_fp32_baseline_is_a_working_detector(base):
    assert 0.6 < base["map"] <= 1.0


@pytest.mark.parametrize("method,mode", CASES)
def test_quantized_model_stays_near_fp32(base, method, mode):
    mse, drop = measure(base, method, mode)
    print(f"{method} {mode}: output MSE {mse:.5f}, mAP50-95 drop {drop:.4f}")
    ref_mse, ref_drop = MEASURED[(method, mode)]
    assert mse <= MSE_FACTOR * ref_mse + MSE_ABS, (mse, ref_mse)
    # And not much better either: a method silently replaced by another lands elsewhere.
    assert mse >= ref_mse / MSE_FACTOR, (mse, ref_mse)
    assert drop <= ref_drop + DROP_MARGIN, (drop, ref_drop)
