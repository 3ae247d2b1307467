"""bench/quant_bench.py runs end to end on the bundled model (one rep, one run, one thread): it
quantizes to INT8, FP8 and INT8 with --placement all (timed in lowbit only), times every (engine,
variant) pair and prints the ratio table with the issue's targets. Timing values are not checked
(tests never assert wall time), only that each was measured and the ratios are the ratios of the
per-rep times (with one run a rep, lowbit's per-round ratios from `lowbit latency` are exactly
those).
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(SRC, "bench", "quant_bench.py")
MODEL = os.path.join(SRC, "assets", "shapes-yolov10m-w0p1875-raw.onnx")

pytestmark = pytest.mark.skipif(not LOWBIT or not os.path.exists(LOWBIT),
                                reason="LOWBIT_BIN not set")


def test_quant_bench_smoke(tmp_path):
    pytest.importorskip("onnxruntime")
    if not os.path.isfile(MODEL):
        pytest.skip("no bundled model")
    out = tmp_path / "bench.json"
    r = subprocess.run([sys.executable, BENCH, "--lowbit", LOWBIT, "--reps", "1", "--runs", "1",
                        "--warmup", "0", "--threads", "1", "--calib-max", "2", "--work",
                        str(tmp_path / "work"), "--json", str(out), MODEL],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr + r.stdout
    for name in ("lowbit INT8 / lowbit FP32", "lowbit FP8 / lowbit FP32",
                 "lowbit INT8 / ORT INT8", "lowbit FP32 / ORT FP32"):
        assert f"| {name} |" in r.stdout
    assert "| lowbit INT8 / lowbit FP32 |" in r.stdout and "<= 0.5" in r.stdout
    res = json.loads(out.read_text())
    assert len(res) == 1 and res[0]["kind"] == "bundled" and res[0]["threads"] == 1
    # Both engines timed the first val image, letterboxed (its grey 114 border and real content).
    x = np.load(res[0]["input"])
    assert x.shape == (1, 3, 320, 320) and x.dtype == np.float32
    assert np.isclose(x, 114 / 255).any() and x.std() > 0.05 and 0 <= x.min() and x.max() <= 1
    t = res[0]["times_ms"]
    for v in ("fp32", "int8", "fp8", "int8-all"):
        assert len(t[f"lowbit {v}"]) == 1 and t[f"lowbit {v}"][0] > 0
    assert len(t["ort int8"]) == 1 and len(t["ort fp32"]) == 1
    assert "ort int8-all" not in t
    q = {x["ratio"]: x for x in res[0]["ratios"]}
    assert q["lowbit INT8 / lowbit FP32"]["median"] == pytest.approx(
        t["lowbit int8"][0] / t["lowbit fp32"][0])
    assert q["lowbit INT8 / lowbit FP32"]["target"] == 0.5
    assert q["lowbit INT8 all-placement / lowbit FP32"]["median"] == pytest.approx(
        t["lowbit int8-all"][0] / t["lowbit fp32"][0])
    assert (tmp_path / "work" / "shapes-yolov10m-w0p1875-raw-int8.onnx").exists()
    assert (tmp_path / "work" / "shapes-yolov10m-w0p1875-raw-fp8.onnx").exists()
    # --placement all quantizes the 12-channel convs the default placement keeps in float.
    def convs_with_int8_weights(path):
        onnx = pytest.importorskip("onnx")
        m = onnx.load(str(path))
        deq = {n.output[0] for n in m.graph.node if n.op_type == "DequantizeLinear"}
        return sum(1 for n in m.graph.node if n.op_type == "Conv" and n.input[1] in deq)
    work = tmp_path / "work"
    assert convs_with_int8_weights(work / "shapes-yolov10m-w0p1875-raw-int8-all.onnx") > \
        convs_with_int8_weights(work / "shapes-yolov10m-w0p1875-raw-int8.onnx")
