"""float16 models in lowbit's engine against ONNX Runtime (CPU EP).

Models: the bundled model converted to float16 (`lowbit quantize --high-precision fp16` with every
node excluded from quantization: Conv, Sigmoid, Mul, Add, Concat, Split, Reshape, MaxPool, Resize,
MatMul, Softmax, Transpose in float16 between boundary Casts), and its INT8 and FP8 Q/DQ models
with `--high-precision fp16`. lowbit runs each float16 node like ORT's CPU EP: natively where the
kernel handles float16 exactly, else inputs widened to float32, the float32 kernel, outputs
rounded to float16 (src/runtime/kernels/fp16_fallback.h); except float16 convs, which by default
run as bf16 convs where the CPU has AVX512-BF16/AMX (kernels/cpu/fp8conv.cpp; bounds in
test_plain_float16_model_bf16_convs), the comparisons below with LOWBIT_LOWP_KERNELS=0 where they
need the widening path.

- Plain float16 model: within 2 float16 ulps of the output's largest magnitude (measured: 1 ulp,
  0.03125 at |y| ~ 35).
- Q/DQ float16 models: ORT removes the float16 rounding between consecutive nodes that it runs in
  float32 (its RemoveDuplicateCastTransformer), lowbit rounds every float16 tensor the graph
  stores; each such difference can move a value across an INT8/FP8 rounding boundary, and those
  flips compound through the network. On these models a flip-free comparison is impossible even
  in float32 (lowbit's reference and fast paths differ that much on the float32 INT8 model), so
  the bound is ORT's own float16-vs-float32 difference: lowbit must be no further from ORT's
  float16 result than ORT's float16 result is from ORT's float32 one (measured: max 2.02 vs 2.13,
  mean 0.121 vs 0.128, INT8).
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
MODEL = os.path.join(SRC, "assets", "shapes-yolov10m-w0p1875-raw.onnx")
CALIB_LIST = os.path.join(SRC, "assets", "calib", "calib100.txt")


def lowbit(*args, lowp=True):
    env = dict(os.environ, LOWBIT_LOWP_KERNELS="1" if lowp else "0")
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


def ort_run(path, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0].astype(np.float64)


def lowbit_run(path, xfile, tmp, *extra, lowp=True):
    out = tmp / "smoke"
    lowbit("smoke", path, "--input", xfile, "--out", out, "--save-outputs", "--runs", 1,
           "--warmup", 0, "--threads", 2, *extra, lowp=lowp)
    return np.load(out / "outputs" / "0.npy").astype(np.float64)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp("fp16")
    calib = d / "calib.npy"
    lowbit("calib", "--list", CALIB_LIST, "--imgsz", 320, "--max-images", 8, "--out", calib,
           "--threads", 2)
    x = np.load(calib)[3:4]
    np.save(d / "x.npy", x)
    common = ["--calib", calib, "--calibration-method", "max", "--threads", 2]
    models = {}
    for name, extra in [("plain", ["--mode", "int8", "--exclude", ".*"]),
                        ("int8", ["--mode", "int8"]), ("fp8", ["--mode", "fp8"])]:
        for hp in ("fp16", "fp32"):
            if name == "plain" and hp == "fp32":
                continue
            path = d / f"{name}_{hp}.onnx"
            lowbit("quantize", MODEL, "--out", path, "--high-precision", hp, *common, *extra)
            models[name, hp] = path
    return {"dir": d, "x": x, "xfile": d / "x.npy", "models": models}


@pytest.mark.parametrize("reference", [False, True])
def test_plain_float16_model_within_two_ulps(work, reference, tmp_path):
    """The widening path (LOWBIT_LOWP_KERNELS=0: float16 convs widened to float32, as ORT does)
    and the reference kernels. The default bf16 convs: test_plain_float16_model_bf16_convs."""
    path = work["models"]["plain", "fp16"]
    y = ort_run(path, work["x"])
    z = lowbit_run(path, work["xfile"], tmp_path, *(["--reference"] if reference else []),
                   lowp=False)
    assert z.shape == y.shape
    top = float(np.abs(y).max())
    ulp = 2.0 ** (np.floor(np.log2(top)) - 10)
    diff = float(np.abs(z - y).max())
    print(f"plain fp16: max |lowbit - ORT| = {diff} ({diff / ulp:.2f} ulp of {top})")
    assert diff <= 2 * ulp


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_qdq_float16_model_as_close_as_ort_to_itself(work, mode, tmp_path):
    m16, m32 = work["models"][mode, "fp16"], work["models"][mode, "fp32"]
    y16 = ort_run(m16, work["x"])
    y32 = ort_run(m32, work["x"])
    z = lowbit_run(m16, work["xfile"], tmp_path)
    assert z.shape == y16.shape
    assert np.isfinite(z).all()
    ours = np.abs(z - y16)
    theirs = np.abs(y16 - y32)
    print(f"{mode} fp16: lowbit vs ORT max {ours.max():.4f} mean {ours.mean():.4f}; "
          f"ORT fp16 vs fp32 max {theirs.max():.4f} mean {theirs.mean():.4f}")
    assert ours.mean() <= 1.25 * theirs.mean()
    assert ours.max() <= 1.25 * theirs.max() + 1e-6


def test_plain_float16_model_bf16_convs(work, tmp_path):
    """By default float16 convs run as oneDNN bf16 convs (oneDNN 2.6 has no float16 conv; the
    operands are rounded to bfloat16, 8 significant bits of float16's 11, and summed in
    float32). bfloat16 carries 2^3 times float16's rounding error, so lowbit must be no further
    from ORT's float16 result than 8x ORT's float16 result is from the float32 model it was
    converted from (measured on this image: mean 4.3x, max 7.1x); and mAP50-95 on the bundled
    val set (100 images) within 0.002 of the widening path (measured on all 252: 0.7106 vs
    0.7107, float32 0.7110). The bf16 steps really ran; LOWBIT_LOWP_KERNELS=0 turns them off."""
    path = work["models"]["plain", "fp16"]

    def steps(lowp):
        env = dict(os.environ, LOWBIT_LOWP_KERNELS="1" if lowp else "0")
        info = subprocess.run([BIN, "info", str(path), "--json"], capture_output=True, text=True,
                              env=env)
        assert info.returncode == 0, info.stderr
        return json.loads(info.stdout)["kernels"]["steps"]

    on, off = steps(True), steps(False)
    assert on.get("conv_fp16_bf16", 0) >= 50 and on.get("conv", 0) == 0, on
    assert off.get("conv_fp16_bf16", 0) == 0 and off.get("conv", 0) >= 50, off
    y16 = ort_run(path, work["x"])
    y32 = ort_run(MODEL, work["x"])
    z = lowbit_run(path, work["xfile"], tmp_path)
    assert np.isfinite(z).all()
    ours, theirs = np.abs(z - y16), np.abs(y16 - y32)
    print(f"plain fp16, bf16 convs: lowbit vs ORT max {ours.max():.4f} mean {ours.mean():.5f}; "
          f"ORT fp16 vs fp32 max {theirs.max():.4f} mean {theirs.mean():.5f}")
    assert ours.mean() <= 8 * theirs.mean()
    assert ours.max() <= 8 * theirs.max()
    maps = {}
    for lowp in (True, False):
        out = tmp_path / f"map{int(lowp)}.json"
        lowbit("eval", path, "--max-images", 100, "--warmup-runs", 0, "--quiet", "--out", out,
               lowp=lowp)
        maps[lowp] = json.loads(out.read_text())["metrics"]["mAP_50_95"]
    print(f"mAP50-95 bf16 convs {maps[True]:.4f}, widening {maps[False]:.4f}")
    assert abs(maps[True] - maps[False]) <= 0.002, maps
