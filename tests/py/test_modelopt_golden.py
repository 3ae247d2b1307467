"""lowbit's Q/DQ placement and scales against NVIDIA ModelOpt's, without ModelOpt.

tests/golden/modelopt-bundled-{int8,fp8}.json hold what nvidia-modelopt 0.47.0 wrote for the
bundled raw-head model (tools/modelopt_golden.py made them once; see tests/golden/README.md): for
every input of every node that a DequantizeLinear feeds, the quantized tensor and its scales.
lowbit quantizes the same model from the same calibration data (the first 16 bundled
calibration images, `max` in both tools) and must give:

- the same placement (`quantize --modelopt-parity`: without lowbit's YOLO SiLU residual rule):
  the same (node, input) pairs, except the differences pinned in KNOWN_DIFFERENCES, each with
  its reason;
- the same scales: activations within 1e-4 relative (both take max |x| over the same images,
  each from its own engine's float rounding: ORT's for ModelOpt, lowbit's own), per-channel
  weight scales within 1e-6 relative (max |w| per output channel / 127 or / 448).
"""
import json
import os
import subprocess

import onnx
import pytest

import qdq_summary

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
GOLDEN = os.path.join(SRC, "tests", "golden")
ACT_RTOL, WEIGHT_RTOL = 1e-4, 1e-6
# ModelOpt's FP8 ONNX path calibrates INT8 scales (amax / 127) and converts them with
# scale * 448 / 127 (modelopt/onnx/quantization/fp8.py, _int8_scale_to_fp8_scale), so its FP8
# scale is amax * 448 / 127^2 (about amax / 36: only E4M3 values up to 36 are used). lowbit's is
# amax / 448 (the whole E4M3 range). Compared after that conversion.
SCALE_FACTOR = {"int8": 1.0, "fp8": (448.0 / 127.0) ** 2}

# (node:input) -> why lowbit differs from ModelOpt there, per mode. All are the same case: a
# small-channel Conv that both tools keep in high precision (no weight Q/DQ in either; ModelOpt's
# Conv rules, INT8: OC 12 without a TensorRT INT8 kernel; FP8: OC or IC/group <= 16) reading a
# tensor that other consumers need quantized. ModelOpt gives every consumer of a quantized tensor
# the one shared DequantizeLinear, so the excluded Conv reads dequantized values anyway; lowbit
# gives the excluded Conv the float tensor (`quantize --explain`: "SKIP ... small-channel Conv").
_SHARED_DQ = ("excluded small-channel Conv: ModelOpt's shared DQ of the Split output still feeds "
              "it, lowbit feeds it the float tensor")
KNOWN_DIFFERENCES = {
    "int8": {"/model.2/m.0/cv1/conv/Conv:0": _SHARED_DQ},
    "fp8": {k: _SHARED_DQ for k in ("/model.2/m.0/cv1/conv/Conv:0",
                                    "/model.8/m.0/cv1/cv1.0/conv/Conv:0",
                                    "/model.19/m.0/cv1/cv1.0/conv/Conv:0",
                                    "/model.22/m.0/cv1/cv1.0/conv/Conv:0")},
}


def lowbit(*args):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"lowbit {' '.join(map(str, args))}:\n{r.stderr}\n{r.stdout}"
    return r


@pytest.fixture(scope="module")
def calib(tmp_path_factory):
    g = json.load(open(os.path.join(GOLDEN, "modelopt-bundled-int8.json")))["calibration"]
    out = tmp_path_factory.mktemp("golden") / "calib.npy"
    lowbit("calib", "--list", os.path.join(SRC, g["list"]), "--imgsz", g["imgsz"],
           "--max-images", g["images"], "--out", out)
    return out


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_placement_and_scales_match_modelopt(calib, tmp_path, mode):
    golden = json.load(open(os.path.join(GOLDEN, f"modelopt-bundled-{mode}.json")))
    assert golden["tool"].startswith("nvidia-modelopt ")
    assert golden["calibration"]["method"] == "max"
    q = tmp_path / f"{mode}.onnx"
    lowbit("quantize", os.path.join(SRC, golden["model"]), "--mode", mode, "--calib", calib,
           "--calibration-method", "max", "--high-precision", "fp32", "--modelopt-parity",
           "--out", q)
    ours = qdq_summary.summarize(onnx.load(str(q)))
    theirs = golden["inputs"]
    known = KNOWN_DIFFERENCES[mode]

    only_theirs = sorted(set(theirs) - set(ours))
    only_ours = sorted(set(ours) - set(theirs))
    assert only_ours == [], f"lowbit quantizes inputs ModelOpt does not: {only_ours}"
    assert only_theirs == sorted(known), f"ModelOpt quantizes inputs lowbit does not: {only_theirs}"
    for key in known:  # the pinned case: ModelOpt quantized no weight of that Conv either
        assert key.replace(":0", ":1") not in theirs, key

    bad = []
    for key in sorted(set(ours) & set(theirs)):
        a, b = ours[key], theirs[key]
        assert a["kind"] == b["kind"], key
        if a["kind"] == "activation":
            assert a["tensor"] == b["tensor"], key
        assert len(a["scale"]) == len(b["scale"]), (key, len(a["scale"]), len(b["scale"]))
        if a["kind"] == "weight":
            assert len(a["scale"]) > 1  # per output channel
        rtol = ACT_RTOL if a["kind"] == "activation" else WEIGHT_RTOL
        for x, y in zip(a["scale"], b["scale"]):
            x *= SCALE_FACTOR[mode]
            if abs(x - y) > rtol * abs(y):
                bad.append((key, x, y))
                break
        assert all(z == 0 for z in a["zero_point"] + b["zero_point"]), key
    assert bad == [], f"{len(bad)} inputs with other scales, e.g. {bad[:5]}"
