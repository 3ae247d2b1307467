"""Cross-check of `lowbit quantize` against ONNX Runtime.

Every INT8 and FP8 model lowbit writes must pass onnx.checker, load and run in onnxruntime, and
lowbit's own engine must reproduce ORT's output within one quantization step per element
(step = max|output| / 127: one INT8 step of the output's range). ORT runs with graph
optimizations disabled for that comparison (its QDQ fusions change the arithmetic; ModelOpt
calibrates the same way) and with all optimizations for the "loads and runs" check.

Models: small synthetic graphs that exercise every placement rule, and the committed
tests/models/yolov10m-w0p1875*.onnx fixtures.
"""
import json
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
MODELS = os.path.join(SRC, "tests", "models")
RAW = os.path.join(MODELS, "yolov10m-w0p1875-raw.onnx")
E2E = os.path.join(MODELS, "yolov10m-w0p1875.onnx")


def lowbit(*args, check=True):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


def quantize(model, out, *extra):
    r = lowbit("quantize", model, "--out", out, *extra)
    return json.loads(r.stdout)


def ort_run(path, x, optimize=False):
    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    so.intra_op_num_threads = 2
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})


def lowbit_run(path, x, tmp):
    np.save(tmp / "x.npy", x)
    out = tmp / "smoke"
    lowbit("smoke", path, "--input", tmp / "x.npy", "--out", out, "--save-outputs", "--runs", 1,
           "--warmup", 0)
    return np.load(out / "outputs" / "0.npy")


def check_model(path, mode):
    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    assert ops.count("QuantizeLinear") > 0 and ops.count("DequantizeLinear") > 0
    opset = {o.domain: o.version for o in m.opset_import}[""]
    assert opset >= (19 if mode == "fp8" else 13)
    for n in m.graph.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear"):
            assert n.domain in ("", "ai.onnx")
    return m


def compare_with_ort(path, x, tmp, steps=1.0):
    """lowbit's engine vs ORT (no optimizations): within `steps` INT8 steps of the output range."""
    y = ort_run(path, x)[0]
    z = lowbit_run(path, x, tmp)
    assert z.shape == y.shape
    step = float(np.abs(y).max()) / 127.0
    diff = float(np.abs(z.astype(np.float64) - y.astype(np.float64)).max())
    assert diff <= steps * step, f"max |lowbit - ORT| = {diff} > {steps} step(s) of {step}"
    # And ORT with its optimizations loads and runs the same file.
    yo = ort_run(path, x, optimize=True)[0]
    assert np.all(np.isfinite(yo))
    return diff, step


# ---------------------------------------------------------------------------------------------
# Synthetic graph: SiLU blocks, a residual bottleneck, Split/Concat, an SPPF-like MaxPool chain,
# nearest Resize, a PSA-like attention (MatMul, Softmax), and a Conv head.

def _init(name, shape, rng, scale=0.3):
    return numpy_helper.from_array((rng.standard_normal(shape) * scale).astype(np.float32), name)


def synthetic_model(path, dynamic=False, c=32):
    rng = np.random.default_rng(0)
    nodes, inits = [], []

    def conv(name, x, cin, cout, k, stride=1, group=1, act=True):
        inits.append(_init(name + ".W", (cout, cin // group, k, k), rng, 1.0 / np.sqrt(cin * k * k)))
        inits.append(_init(name + ".B", (cout,), rng, 0.1))
        p = k // 2
        nodes.append(helper.make_node("Conv", [x, name + ".W", name + ".B"], [name + "/conv"],
                                      name=name + "/conv/Conv", kernel_shape=[k, k],
                                      pads=[p, p, p, p], strides=[stride, stride], group=group))
        if not act:
            return name + "/conv"
        nodes.append(helper.make_node("Sigmoid", [name + "/conv"], [name + "/sig"],
                                      name=name + "/act/Sigmoid"))
        nodes.append(helper.make_node("Mul", [name + "/conv", name + "/sig"], [name + "/out"],
                                      name=name + "/act/Mul"))
        return name + "/out"

    x0 = conv("stem", "images", 3, c, 3, stride=2)                 # [N, c, 16, 16]
    x1 = conv("down", x0, c, 2 * c, 3, stride=2)                   # [N, 2c, 8, 8]
    inits.append(numpy_helper.from_array(np.array([c, c], np.int64), "split_sizes"))
    nodes.append(helper.make_node("Split", [x1, "split_sizes"], ["s0", "s1"], axis=1, name="split"))
    b1 = conv("m.0.cv1", "s1", c, c, 3)
    b2 = conv("m.0.cv2", b1, c, c, 3)
    nodes.append(helper.make_node("Add", ["s1", b2], ["res"], name="m.0/Add"))
    nodes.append(helper.make_node("Concat", ["s0", "s1", "res"], ["cat"], axis=1, name="concat"))
    x2 = conv("c2f.cv2", "cat", 3 * c, 2 * c, 1)                    # [N, 2c, 8, 8]
    # SPPF
    y = conv("sppf.cv1", x2, 2 * c, c, 1)
    pools = [y]
    for i in range(3):
        nodes.append(helper.make_node("MaxPool", [pools[-1]], [f"mp{i}"], kernel_shape=[5, 5],
                                      pads=[2, 2, 2, 2], strides=[1, 1], name=f"sppf/m_{i}/MaxPool"))
        pools.append(f"mp{i}")
    nodes.append(helper.make_node("Concat", pools, ["sppf_cat"], axis=1, name="sppf/Concat"))
    x3 = conv("sppf.cv2", "sppf_cat", 4 * c, 2 * c, 1)
    # PSA-like attention on [N, 2c, 8, 8]: qkv 1x1 conv, q^T k, softmax, v attn^T.
    qkv = conv("attn.qkv", x3, 2 * c, 3 * c, 1, act=False)
    inits.append(numpy_helper.from_array(np.array([0, 3 * c, 64], np.int64), "qkv_shape"))
    nodes.append(helper.make_node("Reshape", [qkv, "qkv_shape"], ["qkv_r"], name="attn/Reshape"))
    inits.append(numpy_helper.from_array(np.array([c, c, c], np.int64), "qkv_split"))
    nodes.append(helper.make_node("Split", ["qkv_r", "qkv_split"], ["q", "k", "v"], axis=1,
                                  name="attn/Split"))
    nodes.append(helper.make_node("Transpose", ["q"], ["qt"], perm=[0, 2, 1], name="attn/Transpose"))
    nodes.append(helper.make_node("MatMul", ["qt", "k"], ["qk"], name="attn/MatMul"))
    inits.append(numpy_helper.from_array(np.array(1.0 / np.sqrt(c), np.float32), "attn_scale"))
    nodes.append(helper.make_node("Mul", ["qk", "attn_scale"], ["qks"], name="attn/Mul"))
    nodes.append(helper.make_node("Softmax", ["qks"], ["attn"], axis=-1, name="attn/Softmax"))
    nodes.append(helper.make_node("Transpose", ["attn"], ["attn_t"], perm=[0, 2, 1],
                                  name="attn/Transpose_1"))
    nodes.append(helper.make_node("MatMul", ["v", "attn_t"], ["av"], name="attn/MatMul_1"))
    inits.append(numpy_helper.from_array(np.array([0, c, 8, 8], np.int64), "av_shape"))
    nodes.append(helper.make_node("Reshape", ["av", "av_shape"], ["av_r"], name="attn/Reshape_1"))
    proj = conv("attn.proj", "av_r", c, 2 * c, 1, act=False)
    nodes.append(helper.make_node("Add", [x3, proj], ["x4"], name="attn/Add"))
    # Upsample and fuse with the stride-2 feature, then a head.
    inits.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "up_scales"))
    nodes.append(helper.make_node("Resize", ["x4", "", "up_scales"], ["up"], mode="nearest",
                                  name="up/Resize"))
    nodes.append(helper.make_node("Concat", ["up", x0], ["fuse"], axis=1, name="fuse/Concat"))
    x5 = conv("fuse.cv", "fuse", 3 * c, 2 * c, 3)
    dw = conv("head.dw", x5, 2 * c, 2 * c, 3, group=2 * c)
    head = conv("head.out", dw, 2 * c, 20, 1, act=False)
    inits.append(numpy_helper.from_array(np.array([0, 20, -1], np.int64), "out_shape"))
    nodes.append(helper.make_node("Reshape", [head, "out_shape"], ["output0"], name="out/Reshape"))

    n = "N" if dynamic else 1
    graph = helper.make_graph(
        nodes, "synthetic",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [n, 3, 32, 32])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [n, 20, 256])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("synth")
    model = synthetic_model(d / "synthetic.onnx")
    dyn = synthetic_model(d / "synthetic_dyn.onnx", dynamic=True)
    rng = np.random.default_rng(1)
    calib = rng.random((12, 3, 32, 32), dtype=np.float32)
    np.save(d / "calib.npy", calib)
    perm = rng.permutation(12)
    np.save(d / "calib_shuffled.npy", calib[perm])
    x = rng.random((1, 3, 32, 32), dtype=np.float32)
    return {"dir": d, "model": model, "dyn": dyn, "calib": d / "calib.npy",
            "shuffled": d / "calib_shuffled.npy", "x": x}


@pytest.mark.parametrize("mode,extra", [
    ("int8", []),
    ("int8", ["--calibration-method", "entropy"]),
    ("int8", ["--calibration-method", "max"]),
    ("int8", ["--calibration-method", "percentile", "--percentile", "99.9"]),
    ("int8", ["--calibration-method", "mse"]),
    ("int8", ["--zero-point"]),
    ("int8", ["--zero-point", "--zero-point-type", "int8"]),
    ("int8", ["--dq-only"]),
    ("int8", ["--modelopt-parity"]),
    ("fp8", []),
    ("fp8", ["--calibration-method", "entropy"]),
    ("fp8", ["--dq-only"]),
])
def test_synthetic_models_match_ort(synth, tmp_path, mode, extra):
    out = tmp_path / "q.onnx"
    summary = quantize(synth["model"], out, "--mode", mode, "--calib", synth["calib"], *extra)
    assert summary["activation_qdq_pairs"] > 0 and summary["weight_qdq"] > 0
    m = check_model(out, mode)
    zp_types = {i.name: i.data_type for i in m.graph.initializer if i.name.endswith("_zero_point")}
    if mode == "fp8":
        assert set(zp_types.values()) == {TensorProto.FLOAT8E4M3FN}
    elif "--zero-point" in extra:
        want = TensorProto.INT8 if "int8" in extra else TensorProto.UINT8
        assert zp_types["images_zero_point"] == want
    compare_with_ort(out, synth["x"], tmp_path)


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_fp16_high_precision_runs_in_ort(synth, tmp_path, mode):
    out = tmp_path / "q16.onnx"
    summary = quantize(synth["model"], out, "--mode", mode, "--calib", synth["calib"],
                       "--high-precision", "fp16")
    m = check_model(out, mode)
    scales = [i for i in m.graph.initializer if i.name.endswith("_scale")]
    assert scales and all(i.data_type == TensorProto.FLOAT16 for i in scales)
    # Graph I/O keep their float32 types through boundary Casts.
    assert m.graph.input[0].type.tensor_type.elem_type == TensorProto.FLOAT
    assert m.graph.output[0].type.tensor_type.elem_type == TensorProto.FLOAT
    y = ort_run(out, synth["x"])[0]
    y32 = ort_run(synth["model"], synth["x"])[0]
    assert np.all(np.isfinite(y)) and y.dtype == np.float32
    # Loose sanity: the quantized fp16 model still computes the same function.
    assert np.corrcoef(y.ravel(), y32.ravel())[0, 1] > 0.9
    # lowbit runs the float16 model itself: nodes without float16 kernels run in float32 between
    # widened inputs and float16-rounded outputs, as ORT's CPU provider does (InsertCast).
    # ORT does not round every float16 tensor the graph stores: it drops the Cast pairs between
    # consecutive float32-run nodes (RemoveDuplicateCastTransformer), so some tensors stay
    # float32 there. lowbit rounds where the graph says; one flipped rounding before an FP8 Q
    # moves a value by one E4M3 step (up to 1/14 of its range).
    assert summary["lowbit_engine"] == "ok"
    steps = 2.0 if mode == "int8" else 127 / 14
    compare_with_ort(out, synth["x"], tmp_path, steps=steps)
    # The graph --exclude-fp16-op-types writes has those Casts explicitly: lowbit runs it too,
    # and it stays close to ORT on the true float16 model.
    keep = tmp_path / "keep.onnx"
    s2 = quantize(synth["model"], keep, "--mode", mode, "--calib", synth["calib"],
                  "--high-precision", "fp16", "--exclude-fp16-op-types", "Conv", "MatMul",
                  "MaxPool", "Softmax", "Resize")
    assert s2["lowbit_engine"] == "ok"
    check_model(keep, mode)
    compare_with_ort(keep, synth["x"], tmp_path, steps=steps)
    yk = ort_run(keep, synth["x"])[0]
    assert np.corrcoef(y.ravel(), yk.ravel())[0, 1] > 0.99


def test_placement_and_names_on_synthetic(synth, tmp_path):
    out = tmp_path / "q.onnx"
    quantize(synth["model"], out, "--calib", synth["calib"])
    m = onnx.load(str(out))
    nodes = {n.name: n for n in m.graph.node}
    inits = {i.name: i for i in m.graph.initializer}
    # ModelOpt/ORT names on the graph input's pair and on a Conv weight.
    q = nodes["images_QuantizeLinear"]
    assert q.output == ["images_QuantizeLinear_Output"]
    assert list(q.input[1:]) == ["images_scale", "images_zero_point"]
    assert nodes["images_DequantizeLinear"].output == ["images_DequantizeLinear_Output"]
    wdq = nodes["stem.W_DequantizeLinear"]
    assert [a.i for a in wdq.attribute if a.name == "axis"] == [0]
    assert list(numpy_helper.to_array(inits["stem.W_scale"]).shape) == [32]
    conv = nodes["stem/conv/Conv"]
    assert conv.input[0] == "images_DequantizeLinear_Output"
    assert conv.input[1] == "stem.W_DequantizeLinear_Output"
    # Residual Add behind Conv->Sigmoid->Mul: only the skip input is quantized.
    add = nodes["m.0/Add"]
    assert add.input[0] == "s1_DequantizeLinear_Output"
    assert add.input[1] == "m.0.cv2/out"
    # Concat group: members share one scale value.
    scale = lambda t: float(numpy_helper.to_array(inits[t + "_scale"]))
    assert scale("mp0") == scale("sppf_cat") == scale("sppf.cv1/out") == scale("mp1")
    # The graph output and the nodes right before it carry no Q/DQ.
    assert nodes["out/Reshape"].input[0] == "head.out/conv"


@pytest.mark.parametrize("method", ["entropy", "mse", "percentile"])
def test_histogram_scales_ignore_order_and_batch(synth, tmp_path, method):
    ranges = {}
    for name, calib, batch in [("base", synth["calib"], 1), ("shuffled", synth["shuffled"], 1),
                               ("batch4", synth["calib"], 4), ("batch5", synth["shuffled"], 5)]:
        r = tmp_path / f"{name}.json"
        quantize(synth["dyn"], tmp_path / f"{name}.onnx", "--calib", calib, "--calib-batch", batch,
                 "--calibration-method", method, "--ranges", r)
        ranges[name] = json.loads(r.read_text())["tensors"]
    base = ranges.pop("base")
    assert len(base) > 10
    for name, t in ranges.items():
        assert t.keys() == base.keys()
        for k in base:
            assert t[k]["amax"] == base[k]["amax"], (name, k)
            assert t[k]["count"] == base[k]["count"], (name, k)


def test_saved_ranges_are_reused(synth, tmp_path):
    r = tmp_path / "r.json"
    a = tmp_path / "a.onnx"
    b = tmp_path / "b.onnx"
    quantize(synth["model"], a, "--calib", synth["calib"], "--ranges", r)
    s = quantize(synth["model"], b, "--ranges", r)
    assert s["calibration_samples"] == 0
    ia = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(a)).graph.initializer}
    ib = {i.name: numpy_helper.to_array(i) for i in onnx.load(str(b)).graph.initializer}
    assert ia.keys() == ib.keys()
    for k in ia:
        assert np.array_equal(ia[k], ib[k]), k


def test_image_inputs_calibrate_like_the_npy(synth, tmp_path):
    """--calib-list / --calib-images letterbox on the fly exactly as `lowbit calib` stores."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    for i, (h, w) in enumerate([(24, 40), (40, 24), (32, 32)]):
        cv2.imwrite(str(tmp_path / f"im{i}.png"), (rng.random((h, w, 3)) * 255).astype(np.uint8))
    (tmp_path / "list.txt").write_text("im0.png\n# comment\n\nim1.png\nim2.png\n")
    lowbit("calib", "--list", tmp_path / "list.txt", "--out", tmp_path / "c.npy", "--imgsz", 32)
    ranges = []
    for i, src in enumerate([["--calib", tmp_path / "c.npy"],
                             ["--calib-list", tmp_path / "list.txt", "--imgsz", 32],
                             ["--calib-images", tmp_path, "--imgsz", 32]]):
        r = tmp_path / f"r{i}.json"
        quantize(synth["model"], tmp_path / f"q{i}.onnx", *src, "--ranges", r)
        ranges.append(json.loads(r.read_text())["tensors"])
    assert ranges[0] == ranges[1] == ranges[2]


def test_int8_op_types_bypass_placement(synth, tmp_path):
    out = tmp_path / "conv_only.onnx"
    explain = tmp_path / "e.json"
    quantize(synth["model"], out, "--calib", synth["calib"], "--op-types", "Conv",
             "--explain-json", explain)
    e = json.loads(explain.read_text())
    assert {q["op"] for q in e["quantized_nodes"]} == {"Conv"}
    compare_with_ort(out, synth["x"], tmp_path)
    r = lowbit("quantize", synth["model"], "--out", tmp_path / "x.onnx", "--calib",
               synth["calib"], "--high-precision", "bf16", check=False)
    assert r.returncode == 2 and "bf16" in r.stderr


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_modelopt_spellings_translate_one_to_one(synth, tmp_path, mode):
    """ModelOpt's flag spellings give byte for byte the model lowbit's own spellings give (a
    spelling mapped to another mode, method or exclusion would change it)."""
    a = tmp_path / "native.onnx"
    b = tmp_path / "modelopt.onnx"
    quantize(synth["model"], a, "--mode", mode, "--calib", synth["calib"],
             "--calibration-method", "entropy", "--exclude", "head\\.dw", "--exclude", "fuse")
    lowbit("quantize", "--onnx_path", synth["model"], "--quantize_mode", mode,
           "--calibration_data_path", synth["calib"], "--calibration_method", "entropy",
           "--calibration_eps", "cuda:0", "cpu", "--high_precision_dtype", "fp32",
           "--nodes_to_exclude", "head\\.dw", "fuse", "--output_path", b)
    assert a.read_bytes() == b.read_bytes()
    m = onnx.load(str(b))
    names = {n.name for n in m.graph.node}
    assert "fuse.cv.W_QuantizeLinear" not in names and "head.dw.W_QuantizeLinear" not in names
    q_types = {i.data_type for i in m.graph.initializer if i.name.endswith("_zero_point")}
    assert q_types == {TensorProto.FLOAT8E4M3FN if mode == "fp8" else TensorProto.INT8}
    # And the flags matter: another method or mode gives another model.
    c = tmp_path / "other.onnx"
    lowbit("quantize", "--onnx_path", synth["model"], "--quantize_mode", mode,
           "--calibration_data_path", synth["calib"], "--calibration_method", "max",
           "--nodes_to_exclude", "head\\.dw", "fuse", "--output_path", c)
    assert c.read_bytes() != b.read_bytes()


# ---------------------------------------------------------------------------------------------
# YOLOv10m fixtures (width 0.1875, 640x640).

@pytest.fixture(scope="module")
def yolo(tmp_path_factory):
    d = tmp_path_factory.mktemp("yolo")
    rng = np.random.default_rng(7)
    # Random "images" in [0, 1]: enough to exercise every tensor's range.
    calib = rng.random((3, 3, 640, 640), dtype=np.float32)
    np.save(d / "calib.npy", calib)
    np.save(d / "calib_shuffled.npy", calib[[2, 0, 1]])
    return {"dir": d, "calib": d / "calib.npy", "shuffled": d / "calib_shuffled.npy",
            "ranges": d / "ranges.json", "x": calib[:1].copy()}


def test_yolo_raw_int8_and_fp8_match_ort(yolo, tmp_path):
    int8 = tmp_path / "raw_int8.onnx"
    s = quantize(RAW, int8, "--calib", yolo["calib"], "--ranges", yolo["ranges"])
    assert s["convs"] == 117 and s["quantized_convs"] > 100
    check_model(int8, "int8")
    compare_with_ort(int8, yolo["x"], tmp_path)
    fp8 = tmp_path / "raw_fp8.onnx"
    quantize(RAW, fp8, "--mode", "fp8", "--ranges", yolo["ranges"])
    check_model(fp8, "fp8")
    compare_with_ort(fp8, yolo["x"], tmp_path)


def test_yolo_default_method_shuffle_invariant(yolo, tmp_path):
    r = tmp_path / "shuffled.json"
    if not yolo["ranges"].exists():
        quantize(RAW, tmp_path / "a.onnx", "--calib", yolo["calib"], "--ranges", yolo["ranges"])
    quantize(RAW, tmp_path / "b.onnx", "--calib", yolo["shuffled"], "--ranges", r)
    a = json.loads(yolo["ranges"].read_text())["tensors"]
    b = json.loads(r.read_text())["tensors"]
    assert a.keys() == b.keys()
    assert all(a[k]["amax"] == b[k]["amax"] for k in a)


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_yolo_end2end_runs_in_ort_and_lowbit(yolo, tmp_path, mode):
    out = tmp_path / f"e2e_{mode}.onnx"
    quantize(E2E, out, "--mode", mode, "--calib", yolo["calib"], "--calib-max", 1,
             "--calibration-method", "max")
    check_model(out, mode)
    y = ort_run(out, yolo["x"], optimize=True)[0]
    assert y.shape == (1, 300, 6) and np.all(np.isfinite(y))
    z = lowbit_run(out, yolo["x"], tmp_path)
    assert z.shape == (1, 300, 6) and np.all(np.isfinite(z))
    # The same scores (sorted; random weights tie most rows, so rows are not matched) as ORT
    # without its QDQ fusions, within one INT8 step of the score range.
    yr = ort_run(out, yolo["x"])[0]
    ys, zs = np.sort(yr[0, :, 4])[::-1], np.sort(z[0, :, 4])[::-1]
    assert float(np.abs(ys - zs).max()) <= max(float(ys.max()), 1e-6) / 127.0


def test_head_exclusion_file_and_regexes_are_honoured(tmp_path):
    head = tmp_path / "head.txt"
    r = lowbit("head-exclude", RAW, "--out", head)
    names = head.read_text().splitlines()
    assert int(r.stdout) == len(names) == 24
    assert names == sorted(names) and all(n.startswith("/model.23/") for n in names)
    explain = tmp_path / "explain.json"
    lowbit("quantize", RAW, "--explain-json", explain, "--exclude-nodes-file", head)
    e = json.loads(explain.read_text())
    by_file = {s["node"] for s in e["excluded"] if "exclusion file" in s["reason"]}
    assert by_file == set(names)
    assert not any(q["node"].startswith("/model.23/") for q in e["quantized_nodes"])
    assert e["account"]["Conv"]["total"] == 117
    assert e["account"]["Conv"]["quantized"] + e["account"]["Conv"]["skipped"] == 117

    def regex_excluded(pattern):
        lowbit("quantize", RAW, "--explain-json", explain, "--exclude", pattern)
        e = json.loads(explain.read_text())
        return {s["node"] for s in e["excluded"] if "--exclude" in s["reason"]}

    exact = regex_excluded("/model\\.2/")
    assert exact and all(n.startswith("/model.2/") for n in exact)
    prefix = regex_excluded("/model.2")  # re.match semantics: also /model.23/...
    assert exact < prefix and any(n.startswith("/model.23/") for n in prefix)
    assert regex_excluded("cv2") == set()  # anchored at the start of the name


def test_placement_all_quantizes_the_small_channel_convs(tmp_path):
    # c=8: ModelOpt's INT8 Conv rule leaves the 8-channel 3x3 convs in float; --placement all
    # quantizes them too, and the file still runs in ONNX Runtime as lowbit runs it.
    model = synthetic_model(tmp_path / "s8.onnx", c=8)
    rng = np.random.default_rng(2)
    np.save(tmp_path / "calib.npy", rng.random((4, 3, 32, 32), dtype=np.float32))
    x = rng.random((1, 3, 32, 32), dtype=np.float32)
    base = quantize(model, tmp_path / "d.onnx", "--calib", tmp_path / "calib.npy")
    every = quantize(model, tmp_path / "a.onnx", "--calib", tmp_path / "calib.npy",
                     "--placement", "all")
    assert base["placement"] == "modelopt" and every["placement"] == "all"
    assert base["quantized_convs"] < every["quantized_convs"]
    compare_with_ort(tmp_path / "a.onnx", x, tmp_path)


@pytest.mark.parametrize("cmd", ["quantize", "sensitivity", "mixed"])
def test_bad_placement_value_is_a_clear_error(tmp_path, cmd):
    extra = ["--max-drop", "0.01"] if cmd == "mixed" else []
    r = lowbit(cmd, RAW, "--out", tmp_path / "o", "--placement", "everything", *extra, check=False)
    assert r.returncode != 0
    assert "--placement 'everything': expected modelopt" in r.stderr, r.stderr
