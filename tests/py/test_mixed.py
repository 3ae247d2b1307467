"""Per-node formats: `quantize --assign`, `sensitivity --mode w4a8|w4a16`, and `lowbit mixed`.

- An assignment file quantizes exactly what it says (INT4 / INT8 / FP8 weights by node, FP8
  activations where an fp8 node reads them, float nodes excluded); ONNX Runtime runs the result
  and lowbit's engine agrees; bad files are refused naming the node.
- `sensitivity --mode w4a8` of one node equals the output MSE, in ONNX Runtime, of the model
  written with only that node in int4w (`--assign` with default float).
- `lowbit mixed` respects its weight-byte budget, writes model / assignment / Pareto front, and
  refuses bad budgets before writing anything; `--weight-method adaround` / `--bias-correction`
  reach its int4w nodes exactly as `quantize --assign` applies them.
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

HEAD = "/model.23/one2one_cv3.0/one2one_cv3.0.2/Conv"
MID = "/model.20/cv1/conv/Conv"
FIRST = "/model.0/conv/Conv"


def lowbit(*args, check=True):
    r = subprocess.run([LOWBIT, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


@pytest.fixture(scope="module")
def calib_npy(tmp_path_factory):
    d = tmp_path_factory.mktemp("calib")
    lines = [l.strip() for l in CALIB_LIST.read_text().splitlines() if l.strip()][:4]
    lst = d / "list.txt"
    lst.write_text("".join(str(CALIB_LIST.parent / l) + "\n" for l in lines))
    out = d / "calib.npy"
    lowbit("calib", "--list", lst, "--imgsz", 320, "--out", out)
    return out


def ort_outputs(path, x, optimize=False):
    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_BASIC if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return [o.astype(np.float64) for o in s.run(None, {s.get_inputs()[0].name: x})]


def weight_types(path):
    """node name -> element type of the initializer behind its weight's DequantizeLinear."""
    m = onnx.load(str(path))
    inits = {i.name: i.data_type for i in m.graph.initializer}
    dq = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "DequantizeLinear"}
    act_zp = {n.output[0]: inits.get(n.input[2]) for n in m.graph.node
              if n.op_type == "DequantizeLinear" and len(n.input) > 2}
    out = {}
    for n in m.graph.node:
        if n.op_type == "Conv":
            w = n.input[1]
            out[n.name] = (inits.get(dq.get(w)), act_zp.get(n.input[0]))
    return out


def test_assign_formats_by_node(tmp_path, calib_npy):
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"default": "int8", "nodes": {
        HEAD: "float", MID: "int4w", FIRST: "fp8"}}))
    out = tmp_path / "m.onnx"
    summ = json.loads(lowbit("quantize", MODEL, "--assign", a, "--calib", calib_npy,
                             "--out", out).stdout)
    assert summ["weights"] == "assigned" and summ["opset"] == 21
    t = weight_types(out)
    P = onnx.TensorProto
    assert t[MID][0] == P.INT4 and t[MID][1] == P.INT8
    assert t[FIRST][0] == P.FLOAT8E4M3FN and t[FIRST][1] == P.FLOAT8E4M3FN
    assert t[HEAD][0] is None and t[HEAD][1] is None  # float: no Q/DQ at all
    others = [v for k, v in t.items() if k not in (MID, FIRST, HEAD) and v[0] is not None]
    assert others and all(v[0] == P.INT8 for v in others)
    # The file's initializer bytes are what the summary reports.
    m = onnx.load(str(out))
    nbytes = sum(len(i.raw_data) if i.raw_data else onnx.numpy_helper.to_array(i).nbytes
                 for i in m.graph.initializer)
    assert summ["weight_bytes"] == pytest.approx(nbytes, rel=0.01)
    # ORT runs it (unoptimized and with basic optimizations: ORT_ENABLE_ALL refuses INT8
    # activations at opset 21 on this model, as for --mode w4a8 -- an ORT QDQ-transform issue,
    # MaxPool_output_0_q output_dtype INT8 vs a UINT8 zero point); lowbit's engine agrees with ORT's unoptimized
    # graph within twice ORT's own optimized-vs-unoptimized spread (rounding-boundary flips
    # propagate through 100+ quantized layers; a wrong format would be far outside).
    x = np.load(calib_npy)[:1]
    y = np.concatenate([o.ravel() for o in ort_outputs(out, x)])
    yo = np.concatenate([o.ravel() for o in ort_outputs(out, x, optimize=True)])
    spread = np.abs(yo - y).max()
    np.save(tmp_path / "x.npy", x)
    lowbit("smoke", out, "--input", tmp_path / "x.npy", "--out", tmp_path / "s",
           "--save-outputs", "--runs", 1, "--warmup", 0)
    z = np.load(tmp_path / "s" / "outputs" / "0.npy").ravel().astype(np.float64)
    scale = np.abs(y).max()
    assert z.size == y.size
    assert np.abs(z - y).max() <= 2 * spread + 1e-3 * scale
    assert np.abs(z - y).mean() <= 3e-2 * np.abs(y).mean()


@pytest.mark.parametrize("content, needle", [
    ({"nodes": {"/model.20/cv1/conv/Conx": "int8"}}, "did you mean '/model.20/cv1/conv/Conv'"),
    ({"nodes": {MID: "int3"}}, "format 'int3'"),
    ({"nodes": {"/model.2/m.0/cv1/conv/Conv": "int4w"}}, "not quantizable: excluded: INT8 "
                                                          "small-channel Conv"),
    ({"default": "int8", "nodes": {}, "extra": 1}, "unknown key 'extra'"),
    ([1, 2], "expected a JSON object"),
])
def test_assign_refuses_bad_files(tmp_path, calib_npy, content, needle):
    a = tmp_path / "a.json"
    a.write_text(json.dumps(content))
    out = tmp_path / "m.onnx"
    r = lowbit("quantize", MODEL, "--assign", a, "--calib", calib_npy, "--out", out,
               check=False)
    assert r.returncode != 0 and needle in r.stderr, r.stderr
    assert not out.exists()


def test_assign_refuses_fp8_mode(tmp_path, calib_npy):
    a = tmp_path / "a.json"
    a.write_text("{}")
    r = lowbit("quantize", MODEL, "--mode", "fp8", "--assign", a, "--calib", calib_npy,
               "--out", tmp_path / "m.onnx", check=False)
    assert r.returncode != 0 and "--assign works over the INT8 placement" in r.stderr


def test_w4a8_sensitivity_matches_onnxruntime(tmp_path, calib_npy):
    n_images = 2
    rep_path = tmp_path / "rep.json"
    lowbit("sensitivity", MODEL, "--mode", "w4a8", "--calib", calib_npy, "--images", n_images,
           "--calibration-method", "max", "--out", rep_path, "--quiet")
    rep = json.loads(rep_path.read_text())
    assert rep["mode"] == "w4a8"
    names = [n["node"] for n in rep["nodes"]]
    pick = MID
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"default": "float", "nodes": {pick: "int4w"}}))
    q = tmp_path / "one.onnx"
    lowbit("quantize", MODEL, "--assign", a, "--calib", calib_npy, "--calibration-method", "max",
           "--out", q)
    x_all = np.load(calib_npy)
    mse = []
    for i in range(n_images):
        x = x_all[i:i + 1]
        y = np.concatenate([o.ravel() for o in ort_outputs(MODEL, x)])
        yq = np.concatenate([o.ravel() for o in ort_outputs(q, x)])
        mse.append(float(np.mean((yq - y) ** 2)))
    got = next(n for n in rep["nodes"] if n["node"] == pick)["metrics"]["output_mse"]
    assert np.mean(mse) > 0
    assert got == pytest.approx(np.mean(mse), rel=0.05)
    # INT4 weights hurt more than INT8 ones on the same node.
    rep8 = tmp_path / "rep8.json"
    lowbit("sensitivity", MODEL, "--mode", "int8", "--calib", calib_npy, "--images", n_images,
           "--calibration-method", "max", "--out", rep8, "--quiet")
    s8 = {n["node"]: n["score"] for n in json.loads(rep8.read_text())["nodes"]}
    s4 = {n["node"]: n["score"] for n in rep["nodes"]}
    assert sum(s4[k] for k in s8 if k in s4) > sum(s8[k] for k in s8 if k in s4)
    # w4a16: weights only, every Conv with a float weight.
    r16 = tmp_path / "r16.json"
    lowbit("sensitivity", MODEL, "--mode", "w4a16", "--calib", calib_npy, "--images", 1,
           "--out", r16, "--quiet")
    assert all(n["op_type"] == "Conv" for n in json.loads(r16.read_text())["nodes"])


def mixed_args(tmp_path, calib_npy, *extra, method="rtn"):
    return ["mixed", MODEL, "--calib", calib_npy, "--sens-images", 1, "--max-images", 4,
            "--formats", "int4w", "int8", "--weight-method", method, "--front-points", 1,
            "--calibration-method", "max", "--sensitivity-dir", tmp_path / "sens", *extra]


def int4_weights(path):
    """initializer name -> raw bytes of every INT4 initializer of the model."""
    m = onnx.load(str(path))
    return {i.name: i.raw_data for i in m.graph.initializer if i.data_type == onnx.TensorProto.INT4}


def initializers(path):
    m = onnx.load(str(path))
    return {i.name: onnx.numpy_helper.to_array(i).tobytes() for i in m.graph.initializer}


def test_mixed_adaround_reaches_int4w_nodes(tmp_path, calib_npy):
    # AdaRound (few iterations) and bias correction on the int4w nodes: the chosen model is
    # exactly what `quantize --assign` writes with the same options, and its INT4 codes are
    # neither GPTQ's nor RTN's (the option reaches the nodes, not just the argument parser).
    ada = ["--adaround-iters", 30, "--adaround-lambda", 1, "--bias-correction"]
    out = tmp_path / "ada.onnx"
    summ = json.loads(lowbit(*mixed_args(tmp_path, calib_npy, "--budget-bytes", "0.7x", *ada,
                                         "--out", out, method="adaround")).stdout)
    assert summ["formats"]["int4w"] > 0
    pareto = json.loads((tmp_path / "ada.pareto.json").read_text())
    assert pareto["weight_method"] == "adaround" and pareto["bias_correction"] is True
    assert pareto["adaround"] == {"iters": 30, "lambda": 1.0}
    asg = tmp_path / "ada.assign.json"

    def assigned(name, *extra):
        path = tmp_path / name
        lowbit("quantize", MODEL, "--assign", asg, "--calib", calib_npy,
               "--calibration-method", "max", "--out", path, *extra)
        return path

    again = assigned("again.onnx", "--weight-method", "adaround", *ada)
    assert initializers(out) == initializers(again)
    w = int4_weights(out)
    assert w and len(w) == summ["formats"]["int4w"]
    for other in (assigned("gptq.onnx", "--weight-method", "gptq"),
                  assigned("rtn.onnx", "--weight-method", "rtn")):
        wo = int4_weights(other)
        assert wo.keys() == w.keys()
        assert sum(wo[k] != w[k] for k in w) >= len(w) // 2


def test_mixed_budget(tmp_path, calib_npy):
    out = tmp_path / "mx.onnx"
    summ = json.loads(lowbit(*mixed_args(tmp_path, calib_npy, "--budget-bytes", "0.7x",
                                         "--out", out)).stdout)
    int8_bytes = summ["int8_weight_bytes"]
    ch = summ["chosen"]
    assert ch["weight_bytes"] <= 0.7 * int8_bytes
    assert ch["ratio_vs_int8"] == pytest.approx(ch["weight_bytes"] / int8_bytes)
    assert 0 < ch["int4w_weight_share"] < 1
    assert summ["formats"]["int4w"] > 0 and summ["formats"]["int8"] > 0
    # The assignment reproduces the model's formats through quantize --assign.
    asg = json.loads((tmp_path / "mx.assign.json").read_text())
    assert set(asg["nodes"].values()) <= {"int4w", "int8"}
    again = tmp_path / "again.onnx"
    s2 = json.loads(lowbit("quantize", MODEL, "--assign", tmp_path / "mx.assign.json",
                           "--calib", calib_npy, "--calibration-method", "max",
                           "--out", again).stdout)
    assert s2["weight_bytes"] == ch["weight_bytes"]
    pareto = json.loads((tmp_path / "mx.pareto.json").read_text())
    assert pareto["int8"]["weight_bytes"] == int8_bytes
    pts = pareto["points"]
    assert sum(p["chosen"] for p in pts) == 1 and len(pts) >= 3
    assert [p["weight_bytes"] for p in pts] == sorted(p["weight_bytes"] for p in pts)
    est = pareto["estimated_path"]["rows"]
    assert all(a[0] > b[0] and a[1] <= b[1] + 1e-12 for a, b in zip(est, est[1:]))
    # compare shows the front (summary.md and report.html) and refuses a file that is not one.
    base = tmp_path / "base.json"
    lowbit("eval", MODEL, "--max-images", 2, "--out", base)
    lowbit("compare", base, "--mixed", tmp_path / "mx.pareto.json", "--out", tmp_path / "s.md",
           "--html", tmp_path / "r.html")
    md = (tmp_path / "s.md").read_text()
    assert "## Mixed precision" in md and f"| {ch['weight_bytes']} |" in md
    assert "<h2>Mixed precision</h2>" in (tmp_path / "r.html").read_text()
    r = lowbit("compare", base, "--mixed", base, "--out", tmp_path / "t.md", check=False)
    assert r.returncode != 0 and "not a `lowbit mixed` Pareto file" in r.stderr
    assert not (tmp_path / "t.md").exists()
    # A tighter budget gives fewer bytes (the sensitivities come from the cache now).
    out2 = tmp_path / "mx2.onnx"
    s3 = json.loads(lowbit(*mixed_args(tmp_path, calib_npy, "--budget-bytes",
                                       str(int(0.6 * int8_bytes)), "--out", out2)).stdout)
    assert s3["chosen"]["weight_bytes"] <= 0.6 * int8_bytes < ch["weight_bytes"]


@pytest.mark.parametrize("extra, needle", [
    ([], "give a budget"),
    (["--budget-bytes", "0"], "expected a positive number"),
    (["--budget-bytes", "abc"], "expected a positive number"),
    (["--budget-bytes", "-5x"], "expected a positive number"),
    (["--budget-bytes", "9x"], "constrains nothing"),
    (["--budget-bytes", "0.1x"], "below the smallest this model reaches"),
    (["--max-drop", "-0.1"], "--max-drop -0.1"),
    (["--budget-bytes", "0.6x", "--formats", "int5"], "format 'int5'"),
    (["--budget-bytes", "0.6x", "--adaround-iters", "0"], "--adaround-iters 0 must be at least 1"),
    (["--budget-bytes", "0.6x", "--adaround-lambda", "-1"], "--adaround-lambda -1 must be"),
    (["--budget-bytes", "0.6x", "--gptq-samples", "-2"], "--gptq-samples -2 is negative"),
])
def test_mixed_refuses_bad_budgets(tmp_path, calib_npy, extra, needle):
    out = tmp_path / "mx.onnx"
    r = lowbit(*mixed_args(tmp_path, calib_npy, *extra, "--out", out), check=False)
    assert r.returncode != 0 and needle in r.stderr, r.stderr
    assert not out.exists() and not (tmp_path / "mx.assign.json").exists()
    assert not list(tmp_path.glob(".lowbit-mixed-*"))


def test_mixed_refuses_bad_weight_method(tmp_path, calib_npy):
    out = tmp_path / "mx.onnx"
    r = lowbit(*mixed_args(tmp_path, calib_npy, "--budget-bytes", "0.6x", "--out", out,
                           method="adaroundx"), check=False)
    assert r.returncode != 0
    assert "--weight-method 'adaroundx': expected rtn, gptq or adaround" in r.stderr, r.stderr
    assert not out.exists() and not list(tmp_path.glob(".lowbit-mixed-*"))


def test_mixed_max_drop_alone(tmp_path, calib_npy):
    # A drop allowance no state exceeds: the bisection takes the fewest-bytes state (all int4w).
    out = tmp_path / "md.onnx"
    summ = json.loads(lowbit(*mixed_args(tmp_path, calib_npy, "--max-drop", "0.9",
                                         "--out", out)).stdout)
    assert summ["chosen"]["int4w_weight_share"] == pytest.approx(1.0)
    assert summ["chosen"]["drop"] <= 0.9
    assert summ["evaluations"] >= 2  # the INT8 reference, then the path
    assert out.exists() and (tmp_path / "md.assign.json").exists()


@pytest.mark.parametrize("extra, needle", [
    (["--budget-ms", "0"], "--budget-ms '0': expected a positive number of milliseconds"),
    (["--budget-ms", "fast"], "--budget-ms 'fast': expected a positive number"),
    (["--budget-latency", "-0.5x"], "--budget-latency '-0.5x': expected a positive fraction"),
    (["--budget-latency", "9x"], "constrains nothing"),
    (["--budget-ms", "5", "--budget-latency", "0.5x"], "give one latency budget"),
    (["--budget-bytes", "0.6x", "--budget-ms", "5"], "give one of them"),
    (["--budget-ms", "5", "--latency-runs", "0"], "--latency-runs 0"),
    (["--budget-ms", "0.001"], "below the fastest this model reaches"),
])
def test_mixed_refuses_bad_latency_budgets(tmp_path, calib_npy, extra, needle):
    out = tmp_path / "mx.onnx"
    runs = [] if "--latency-runs" in extra else ["--latency-runs", 1]
    r = lowbit(*mixed_args(tmp_path, calib_npy, *extra, *runs, "--out", out), check=False)
    assert r.returncode != 0 and needle in r.stderr, r.stderr
    assert not out.exists() and not (tmp_path / "mx.assign.json").exists()
    assert not list(tmp_path.glob(".lowbit-mixed-*"))


def test_mixed_latency_budget(tmp_path, calib_npy):
    # A loose budget (the machine may be loaded: the state picked is the least-cost one, whose
    # estimate is far below 4x FP32); what is checked is the plumbing: per-node latencies in the
    # path, the chosen model's measured latency beside its estimate, latency on every point.
    out = tmp_path / "lat.onnx"
    summ = json.loads(lowbit(*mixed_args(tmp_path, calib_npy, "--budget-latency", "4x",
                                         "--latency-runs", 2, "--out", out)).stdout)
    ch = summ["chosen"]
    assert summ["fp32_latency_ms"] > 0
    assert ch["latency_ms"] > 0 and ch["estimated_latency_ms"] > 0
    assert ch["estimated_latency_ms"] <= 4 * summ["fp32_latency_ms"]
    assert ch["latency_vs_fp32"] == pytest.approx(ch["latency_ms"] / summ["fp32_latency_ms"])
    pareto = json.loads((tmp_path / "lat.pareto.json").read_text())
    assert pareto["budget_latency"] == "4x" and pareto["latency"]["runs"] == 2
    pts = pareto["points"]
    assert all(p["latency_ms"] > 0 for p in pts)
    assert any(p["on_front_latency"] for p in pts)
    # The fastest measured point is always on the latency front.
    assert min(pts, key=lambda p: (p["latency_ms"], -p["map50_95"]))["on_front_latency"]
    est = pareto["estimated_path"]
    assert est["columns"] == ["weight_bytes", "cost", "latency_ms"]
    rows = est["rows"]
    assert all(a[2] > b[2] and a[1] <= b[1] + 1e-12 for a, b in zip(rows, rows[1:]))
    node_ms = [c["ms"] for n in pareto["nodes"] for c in n["choices"]]
    assert node_ms and all(v >= 0 for v in node_ms) and any(v > 0 for v in node_ms)
    assert out.exists() and (tmp_path / "lat.assign.json").exists()
    # compare shows the front against latency beside the one against size.
    base = tmp_path / "base.json"
    lowbit("eval", MODEL, "--max-images", 2, "--out", base)
    lowbit("compare", base, "--mixed", tmp_path / "lat.pareto.json", "--out", tmp_path / "s.md",
           "--html", tmp_path / "r.html")
    assert "Pareto (latency)" in (tmp_path / "s.md").read_text()
    assert "<h3>Accuracy against latency</h3>" in (tmp_path / "r.html").read_text()
