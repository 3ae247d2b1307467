"""`lowbit sensitivity` end to end, and one node's output MSE against ONNX Runtime.

The cross-check: lowbit measures node n's sensitivity by fake-quantizing n alone inside its own
engine (incremental cone runs). The same number must come out of a real Q/DQ model where only n
is quantized -- written by `lowbit quantize --exclude-nodes-file` listing every other
quantizable node -- run in onnxruntime against the float model, on the same images.
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SOURCE_DIR = Path(os.environ.get("LOWBIT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
MODEL = SOURCE_DIR / "assets" / "shapes-yolov10m-w0p1875-raw.onnx"
CALIB_LIST = SOURCE_DIR / "assets" / "calib" / "calib100.txt"

pytestmark = pytest.mark.skipif(not LOWBIT or not Path(LOWBIT).exists(),
                                reason="LOWBIT_BIN is not set to the lowbit binary")

KEYS = ["tool", "lowbit_version", "model", "mode", "metric", "all_but_one", "images",
        "calibration", "cost", "nodes"]
COST_KEYS = ["full_pass_ms", "sweep_seconds", "passes_per_image", "naive_passes_per_image",
             "ratio_vs_naive"]
NODE_KEYS = ["rank", "node", "op_type", "scope", "macs", "macs_share", "score", "metrics"]


def lowbit(*args, check=True):
    r = subprocess.run([LOWBIT, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


@pytest.fixture(scope="module")
def calib_npy(tmp_path_factory):
    """Six bundled calibration images, letterboxed to 320 by `lowbit calib`."""
    d = tmp_path_factory.mktemp("calib")
    lines = [l.strip() for l in CALIB_LIST.read_text().splitlines() if l.strip()][:6]
    lst = d / "list.txt"
    lst.write_text("".join(str(CALIB_LIST.parent / l) + "\n" for l in lines))
    out = d / "calib.npy"
    lowbit("calib", "--list", lst, "--imgsz", 320, "--out", out)
    return out


def check_report(rep, metric, n_images, mode):
    for k in KEYS:
        assert k in rep, k
    assert rep["tool"] == "lowbit sensitivity"
    assert rep["metric"] == metric and rep["mode"] == mode and rep["images"] == n_images
    assert set(["method", "source"]) <= set(rep["calibration"])
    for k in COST_KEYS:
        assert isinstance(rep["cost"][k], (int, float)), k
    nodes = rep["nodes"]
    assert len(nodes) > 50
    for i, n in enumerate(nodes):
        for k in NODE_KEYS:
            assert k in n, k
        assert n["rank"] == i + 1
        if i:
            assert nodes[i - 1]["score"] >= n["score"]
    assert len({n["node"] for n in nodes}) == len(nodes)
    assert any(n["macs"] > 0 for n in nodes)
    assert 0 < sum(n["macs_share"] for n in nodes) <= 1.0 + 1e-9


def test_output_mse_report_and_cost(tmp_path, calib_npy):
    out = tmp_path / "sens" / "report.json"
    r = lowbit("sensitivity", MODEL, "--mode", "fp8", "--calib", calib_npy, "--images", 3,
               "--metric", "output-mse", "--out", out, "--threads", 2)
    rep = json.loads(out.read_text())
    check_report(rep, "output-mse", 3, "fp8")
    assert rep["all_but_one"] is False
    assert (tmp_path / "sens" / "report.md").read_text().startswith("# lowbit sensitivity")
    # Incremental: well under one full pass per node.
    assert rep["cost"]["ratio_vs_naive"] < 1.0
    assert "full-pass equivalents per image" in r.stderr
    assert all("output_mse" in n["metrics"] and "cosine" in n["metrics"] for n in rep["nodes"])


def test_local_sqnr_and_all_but_one(tmp_path, calib_npy):
    out = tmp_path / "sqnr.json"
    lowbit("sensitivity", MODEL, "--mode", "int8", "--calib", calib_npy, "--images", 2,
           "--metric", "local-sqnr", "--out", out, "--quiet")
    rep = json.loads(out.read_text())
    check_report(rep, "local-sqnr", 2, "int8")
    for n in rep["nodes"]:
        assert n["score"] == pytest.approx(-n["metrics"]["local_sqnr_db"])
    # issue 6 asks <= 2 passes per image; wall-time ratios vary on loaded machines, so only a
    # loose bound is checked here
    assert rep["cost"]["passes_per_image"] < 6.0

    out = tmp_path / "abo.json"
    lowbit("sensitivity", MODEL, "--mode", "int8", "--calib", calib_npy, "--images", 1,
           "--all-but-one", "--out", out, "--quiet")
    rep = json.loads(out.read_text())
    check_report(rep, "output-mse", 1, "int8")
    assert rep["all_but_one"] is True
    assert rep["reference"]["all_quantized_output_mse"] > 0
    top = rep["nodes"][0]
    assert top["metrics"]["recovery"] == pytest.approx(top["score"])


def test_bad_arguments(tmp_path):
    for args in (["--mode", "int2"], ["--metric", "bogus"], ["--images", "0"],
                 ["--no-such-flag"], ["--metric", "local-sqnr", "--all-but-one"]):
        r = lowbit("sensitivity", MODEL, *args, "--out", tmp_path / "x.json", check=False)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.strip(), args  # a message saying what is wrong
    missing = tmp_path / "missing.onnx"
    r = lowbit("sensitivity", missing, "--out", tmp_path / "x.json", check=False)
    assert r.returncode != 0
    assert str(missing) in r.stderr
    r = lowbit("sensitivity", MODEL, "--calib", tmp_path / "none.npy", "--out",
               tmp_path / "x.json", check=False)
    assert r.returncode != 0 and "none.npy" in r.stderr
    assert not (tmp_path / "x.json").exists()


def ort_outputs(path, x):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return [o.astype(np.float64) for o in s.run(None, {s.get_inputs()[0].name: x})]


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_one_node_mse_matches_onnxruntime(tmp_path, calib_npy, mode):
    n_images = 3
    out = tmp_path / "rep.json"
    lowbit("sensitivity", MODEL, "--mode", mode, "--calib", calib_npy, "--images", n_images,
           "--calibration-method", "max", "--out", out, "--quiet")
    rep = json.loads(out.read_text())
    names = [n["node"] for n in rep["nodes"]]
    # A backbone Conv (its cone is most of the graph) and the most sensitive node.
    picks = [next(n for n in names if n.startswith("/model.2/") and n.endswith("Conv")),
             names[0]]
    x_all = np.load(calib_npy)
    for pick in dict.fromkeys(picks):
        excl = tmp_path / "excl.txt"
        excl.write_text("".join(n + "\n" for n in names if n != pick))
        q = tmp_path / "one.onnx"
        lowbit("quantize", MODEL, "--mode", mode, "--calib", calib_npy, "--calibration-method",
               "max", "--exclude-nodes-file", excl, "--out", q)
        # Only `pick` reads dequantized tensors.
        m = onnx.load(str(q))
        dq = {o for n in m.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        readers = {n.name for n in m.graph.node if any(i in dq for i in n.input)}
        assert readers == {pick}
        mse, cos = [], []
        for i in range(n_images):
            x = x_all[i:i + 1]
            y = np.concatenate([o.ravel() for o in ort_outputs(MODEL, x)])
            yq = np.concatenate([o.ravel() for o in ort_outputs(q, x)])
            mse.append(float(np.mean((yq - y) ** 2)))
            cos.append(1.0 - float(np.dot(y, yq) / np.sqrt(np.dot(y, y) * np.dot(yq, yq))))
        want = float(np.mean(mse))
        metrics = next(n for n in rep["nodes"] if n["node"] == pick)["metrics"]
        assert want > 0
        assert metrics["output_mse"] == pytest.approx(want, rel=0.05), (pick, metrics, want)
        # 1 - cosine similarity of the concatenated outputs, mean over images.
        want_cos = float(np.mean(cos))
        assert want_cos > 0
        assert metrics["cosine"] == pytest.approx(want_cos, rel=0.1), (pick, metrics, want_cos)


def test_cosine_metric_ranks_by_cosine(tmp_path, calib_npy):
    out = tmp_path / "cos.json"
    lowbit("sensitivity", MODEL, "--mode", "int8", "--calib", calib_npy, "--images", 2,
           "--metric", "cosine", "--out", out, "--quiet")
    rep = json.loads(out.read_text())
    check_report(rep, "cosine", 2, "int8")
    for n in rep["nodes"]:
        assert n["score"] == n["metrics"]["cosine"]


def test_reference_runs_equal_the_fast_paths(tmp_path, calib_npy):
    """--reference-runs re-runs each node through the executor instead of the fast paths: the
    same local SQNR up to float rounding."""
    reps = []
    for extra in ([], ["--reference-runs"]):
        out = tmp_path / f"sqnr{len(extra)}.json"
        lowbit("sensitivity", MODEL, "--mode", "int8", "--calib", calib_npy, "--images", 1,
               "--metric", "local-sqnr", "--out", out, "--quiet", *extra)
        reps.append({n["node"]: n["metrics"]["local_sqnr_db"] for n in json.loads(
            out.read_text())["nodes"]})
    fast, ref = reps
    assert fast.keys() == ref.keys()
    for k in fast:
        assert fast[k] == pytest.approx(ref[k], abs=0.05), k


def test_map_metric_equals_eval_of_the_one_node_model(tmp_path, calib_npy):
    """--metric map: each node's score is the mAP50-95 drop that `eval` measures for the model
    with only that node quantized, on the same validation images."""
    n_val = 4
    out = tmp_path / "map.json"
    lowbit("sensitivity", MODEL, "--mode", "int8", "--calib", calib_npy, "--images", 1,
           "--metric", "map", "--val-images", n_val, "--calibration-method", "max",
           "--out", out, "--quiet")
    rep = json.loads(out.read_text())
    check_report(rep, "map", n_val, "int8")  # map reports the validation images
    names = [n["node"] for n in rep["nodes"]]
    fp32 = tmp_path / "fp32.json"
    lowbit("eval", MODEL, "--max-images", n_val, "--quiet", "--out", fp32)
    base = json.loads(fp32.read_text())["metrics"]["mAP_50_95"]
    convs = [n["node"] for n in rep["nodes"] if n["op_type"] == "Conv"]
    for pick in dict.fromkeys([convs[0], convs[-1]]):  # the most and least sensitive Conv
        excl = tmp_path / "excl.txt"
        excl.write_text("".join(n + "\n" for n in names if n != pick))
        q = tmp_path / "one.onnx"
        lowbit("quantize", MODEL, "--mode", "int8", "--calib", calib_npy, "--calibration-method",
               "max", "--exclude-nodes-file", excl, "--out", q)
        m = onnx.load(str(q))
        dq = {o for n in m.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        assert {n.name for n in m.graph.node if any(i in dq for i in n.input)} == {pick}
        res = tmp_path / "one.json"
        lowbit("eval", q, "--max-images", n_val, "--quiet", "--out", res)
        drop = base - json.loads(res.read_text())["metrics"]["mAP_50_95"]
        got = next(n for n in rep["nodes"] if n["node"] == pick)["score"]
        assert got == pytest.approx(drop, abs=1e-4), (pick, got, drop)
