"""The CI-sized model zoo (tests/models/zoo-tiny/, from `tools/zoo_export.py --tiny`): architectures
other than YOLOv10 on lowbit's engine, through `eval` and through `quantize`.

Models (random seeded weights, reduced width and resolution; tests/models/zoo-tiny/manifest.json):
YOLOv8n-style and YOLO11n-style decoded heads ([1, 4+nc, N]; YOLO11 has C2PSA attention: MatMul,
Softmax, Transpose), the YOLOv8 raw DFL head ([1, 64+nc, N], cut from the decoded export here),
a MobileNetV3-small classifier (hard-swish, squeeze-excitation, Gemm), a U-Net segmenter
(ConvTranspose, MaxPool, skip Concat).

For each: lowbit's outputs (fast path and --reference) within 1e-4 of the output's scale of ONNX
Runtime's; detectors through `lowbit eval` on 3 bundled val images with the head layout they
must be recognised as; every model through `quantize` in int8 and fp8, whose files ONNX Runtime
loads and runs, and whose INT8 output lowbit's engine reproduces within one INT8 step of the
output's range (ORT without graph optimizations, as in test_quantize_ort.py).
A model listed in the manifest but missing, or a missing binary, fails: nothing is skipped.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "build/lowbit")
SOURCE_DIR = Path(os.environ.get("LOWBIT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
ZOO = SOURCE_DIR / "tests" / "models" / "zoo-tiny"
ASSETS = SOURCE_DIR / "assets"
MANIFEST = json.loads((ZOO / "manifest.json").read_text())
MODELS = {m["name"]: m for m in MANIFEST["models"]}
TOL = 1e-4

# The head layout `eval` must pick for each detector (eval's "head" field).
EXPECTED_HEAD = {"decoded": "decoded", "raw-dfl": "raw DFL", "end2end": "end-to-end",
                 "rtdetr": "DETR"}


def lowbit(*args):
    r = subprocess.run([LOWBIT, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"lowbit {' '.join(map(str, args))} failed:\n{r.stderr}\n{r.stdout}"
    return r


def ort_run(path, x, optimize=True):
    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else
                                   ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x})


def lowbit_run(path, x, work, reference=False):
    work.mkdir(parents=True, exist_ok=True)
    np.save(work / "x.npy", x)
    out = work / ("ref" if reference else "fast")
    args = ["smoke", path, "--input", work / "x.npy", "--out", out, "--save-outputs", "--runs",
            "1", "--warmup", "0", "--threads", "2"] + (["--reference"] if reference else [])
    lowbit(*args)
    outs = []
    while (out / "outputs" / f"{len(outs)}.npy").exists():
        outs.append(np.load(out / "outputs" / f"{len(outs)}.npy"))
    return outs


def image_like(entry, seed=0):
    return np.random.default_rng(seed).random(entry["input_shape"], dtype=np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """name -> (path, manifest entry); adds the raw DFL cut of every decoded YOLOv8 head."""
    assert Path(LOWBIT).exists(), f"LOWBIT_BIN {LOWBIT} does not exist"
    out = {}
    for name, e in MODELS.items():
        path = ZOO / e["file"]
        assert path.exists(), f"{path} is listed in the manifest but missing"
        out[name] = (path, e)
    work = tmp_path_factory.mktemp("raw")
    for name, (path, e) in list(out.items()):
        if e.get("head") == "decoded" and name.startswith("yolov8"):
            m = onnx.load(str(path))
            raw_name = [n for n in m.graph.node if n.op_type == "Split"][-1].input[0]
            raw = work / f"{name}-raw.onnx"
            onnx.utils.extract_model(str(path), str(raw), [m.graph.input[0].name], [raw_name])
            cut = onnx.load(str(raw))  # extract_model drops the metadata (class names)
            for p in m.metadata_props:
                cut.metadata_props.add(key=p.key, value=p.value)
            onnx.save(cut, str(raw))
            out[f"{name}-raw"] = (raw, dict(e, name=f"{name}-raw", head="raw-dfl"))
    return out


def test_manifest_covers_the_architectures():
    kinds = {(e["kind"], e.get("head")) for e in MODELS.values()}
    assert ("classifier", None) in kinds and ("segmenter", None) in kinds
    assert ("detector", "decoded") in kinds
    assert sum(p.stat().st_size for p in ZOO.glob("*.onnx")) < 8 << 20


def test_outputs_match_onnxruntime(models, tmp_path):
    for name, (path, e) in models.items():
        x = image_like(e)
        want = ort_run(path, x)
        for reference in (False, True):
            got = lowbit_run(path, x, tmp_path / name, reference)
            assert len(got) == len(want), name
            for k, (g, w) in enumerate(zip(got, want)):
                assert g.shape == w.shape, f"{name} output {k}: {g.shape} vs {w.shape}"
                scale = max(float(np.abs(w).max()), 1e-6)
                err = float(np.abs(g.astype(np.float64) - w).max())
                assert err <= TOL * scale, (f"{name} output {k} ({'ref' if reference else 'fast'})"
                                            f": max error {err:.3g} > {TOL} x {scale:.3g}")


def test_detectors_evaluate_with_their_head(models, tmp_path):
    detectors = [(n, p, e) for n, (p, e) in models.items() if e["kind"] == "detector"]
    assert {e["head"] for _, _, e in detectors} >= {"decoded", "raw-dfl"}
    for name, path, e in detectors:
        out = tmp_path / f"{name}.json"
        lowbit("eval", path, "--max-images", "3", "--threads", "2", "--out", out, "-q")
        m = json.loads(out.read_text())
        assert m["head"].startswith(EXPECTED_HEAD[e["head"]]), (name, m["head"])
        assert m["imgsz"] == e["input_shape"][-1]
        assert 0.0 <= m["metrics"]["mAP_50_95"] <= 1.0
        assert m["metrics"]["num_detections"] > 0, name  # decoded to boxes, not dropped


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_quantize_runs_in_onnxruntime(models, tmp_path, mode):
    for name, (path, e) in models.items():
        q = tmp_path / f"{name}-{mode}.onnx"
        r = lowbit("quantize", path, "--mode", mode, "--calib-images", ASSETS / "calib" / "images",
                   "--calib-max", "4", "--imgsz", e["input_shape"][-1], "--out", q)
        report = json.loads(r.stdout)
        assert report["activation_qdq_pairs"] > 0 and report["quantized_convs"] > 0, name
        onnx.checker.check_model(str(q))
        x = image_like(e, seed=1)
        fp = ort_run(path, x)
        got_ort = ort_run(q, x)
        assert [a.shape for a in got_ort] == [a.shape for a in fp], name
        assert all(np.isfinite(a).all() for a in got_ort), name
        if mode != "int8":
            continue
        want = ort_run(q, x, optimize=False)
        got = lowbit_run(q, x, tmp_path / f"{name}-{mode}")
        for k, (g, w) in enumerate(zip(got, want)):
            step = max(float(np.abs(w).max()), 1e-6) / 127
            err = float(np.abs(g.astype(np.float64) - w).max())
            assert err <= step, f"{name} int8 output {k}: lowbit vs ORT {err:.3g} > {step:.3g}"
