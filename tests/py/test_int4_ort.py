"""INT4 weights (`lowbit quantize --mode w4a16|w4a8 [--block-size N]`) against ONNX Runtime.

Every model written must pass onnx.checker, store its weights as real INT4 (TensorProto type 22,
two values a byte, low nibble first), load and run in onnxruntime (optimized and not), and
lowbit's engine must agree with ORT. The weights are also decoded here in numpy, independently of
both engines, and checked against the float weights (within half a scale step).
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
RAW = os.path.join(SRC, "tests", "models", "yolov10m-w0p1875-raw.onnx")


def lowbit(*args, check=True):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


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


def synthetic_model(path):
    """Conv (3x3, 1x1, 3x3 with 40 input channels) -> pool -> Gemm (transB) -> MatMul."""
    rng = np.random.default_rng(0)
    nodes, inits = [], []

    def w(name, shape):
        inits.append(numpy_helper.from_array(
            (rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32), name))

    def conv(name, x, cin, cout, k):
        w(name + ".W", (cout, cin, k, k))
        w(name + ".B", (cout,))
        nodes.append(helper.make_node("Conv", [x, name + ".W", name + ".B"], [name + "/conv"],
                                      name=name + "/Conv", kernel_shape=[k, k],
                                      pads=[k // 2] * 4))
        nodes.append(helper.make_node("Sigmoid", [name + "/conv"], [name + "/sig"],
                                      name=name + "/Sigmoid"))
        nodes.append(helper.make_node("Mul", [name + "/conv", name + "/sig"], [name + "/out"],
                                      name=name + "/Mul"))
        return name + "/out"

    x = conv("c1", "images", 3, 16, 3)
    x = conv("c2", x, 16, 40, 1)
    x = conv("head.c3", x, 40, 24, 3)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"], name="gap"))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], name="flat"))
    w("fc.W", (10, 24))
    w("fc.B", (10,))
    nodes.append(helper.make_node("Gemm", ["flat", "fc.W", "fc.B"], ["fc"], transB=1,
                                  name="fc/Gemm"))
    w("mm.W", (10, 6))
    nodes.append(helper.make_node("MatMul", ["fc", "mm.W"], ["output0"], name="mm/MatMul"))
    graph = helper.make_graph(
        nodes, "int4_synthetic",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 6])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return m


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    d = tmp_path_factory.mktemp("int4")
    m = synthetic_model(d / "synthetic.onnx")
    rng = np.random.default_rng(1)
    np.save(d / "calib.npy", rng.random((8, 3, 16, 16), dtype=np.float32))
    return {"dir": d, "model": d / "synthetic.onnx", "float": m, "calib": d / "calib.npy",
            "x": rng.random((1, 3, 16, 16), dtype=np.float32)}


def unpack_int4(raw, n):
    """ONNX INT4: element 2k in the low nibble of byte k, 2k+1 in the high nibble; signed."""
    b = np.frombuffer(raw, dtype=np.uint8)
    nib = np.stack([b & 0x0F, b >> 4], axis=1).reshape(-1)[:n].astype(np.int8)
    return np.where(nib >= 8, nib - 16, nib).astype(np.int8)


def decode_weights(m):
    """{weight name: (float values decoded in numpy, scale expanded to the weight's shape)}."""
    inits = {t.name: t for t in m.graph.initializer}
    out = {}
    for n in m.graph.node:
        if n.op_type != "DequantizeLinear" or inits[n.input[0]].data_type != TensorProto.INT4:
            continue
        t = inits[n.input[0]]
        shape = tuple(t.dims)
        n_el = int(np.prod(shape))
        assert len(t.raw_data) == (n_el + 1) // 2, "INT4 raw_data is not packed two a byte"
        q = unpack_int4(t.raw_data, n_el).reshape(shape).astype(np.float32)
        s = numpy_helper.to_array(inits[n.input[1]])
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        axis, block = attrs.get("axis", 1), attrs.get("block_size", 0)
        if block:
            s = np.repeat(s, block, axis=axis).take(range(shape[axis]), axis=axis)
        else:
            s = s.reshape([-1 if d == axis else 1 for d in range(len(shape))])
        out[n.input[0]] = (q * s, np.broadcast_to(s, shape))
    return out


@pytest.mark.parametrize("block", [0, 8, 16, 64])
def test_w4a16_is_real_int4_and_runs_in_ort(synth, tmp_path, block):
    out = tmp_path / f"w4a16_b{block}.onnx"
    args = ["quantize", synth["model"], "--mode", "w4a16", "--out", out]
    if block:
        args += ["--block-size", block]
    summary = json.loads(lowbit(*args).stdout)
    assert summary["weight_qdq"] == 5 and summary["activation_qdq_pairs"] == 0
    m = onnx.load(str(out))
    onnx.checker.check_model(m, full_check=True)
    assert {o.domain: o.version for o in m.opset_import}[""] == 21
    assert not [n for n in m.graph.node if n.op_type == "QuantizeLinear"]
    decoded = decode_weights(m)
    assert len(decoded) == 5
    floats = {t.name: numpy_helper.to_array(t) for t in synth["float"].graph.initializer}
    for name, (wq, s) in decoded.items():
        # Round to nearest on the grid: within half a step, and the block's |w|max on 7 steps.
        err = np.abs(wq - floats[name])
        assert np.all(err <= 0.5 * s + 1e-6), name
        assert np.allclose(np.abs(wq).max(), np.abs(floats[name]).max(), rtol=1e-6), name
    dq_blocks = {helper.get_attribute_value(a) for n in m.graph.node for a in n.attribute
                 if n.op_type == "DequantizeLinear" and a.name == "block_size"}
    if block:
        # The 3-channel stem and 10-row Gemm/MatMul weights are one block when block > length.
        assert block in dq_blocks or block == 64
    else:
        assert not dq_blocks
    y = ort_run(out, synth["x"])[0]
    yo = ort_run(out, synth["x"], optimize=True)[0]
    z = lowbit_run(out, synth["x"], tmp_path)
    scale = float(np.abs(y).max())
    # ORT's optimized graph (its int4 DQ -> MatMul fusions compute differently) is the spread
    # to stay within; lowbit matches ORT's plain graph far more closely than that.
    assert np.all(np.isfinite(yo)) and np.abs(yo - y).max() <= 0.02 * scale
    assert np.abs(z - y).max() <= 1e-4 * scale, (z, y)
    # And the weights really moved: the output differs from the float model's.
    yf = ort_run(synth["model"], synth["x"])[0]
    assert np.abs(yf - y).max() > 1e-6


def test_w4a8_runs_in_ort_and_engine_agrees(synth, tmp_path):
    out = tmp_path / "w4a8.onnx"
    summary = json.loads(lowbit("quantize", synth["model"], "--mode", "w4a8", "--block-size", 8,
                                "--calib", synth["calib"], "--out", out).stdout)
    assert summary["activation_qdq_pairs"] > 0 and summary["weight_qdq"] > 0
    m = onnx.load(str(out))
    onnx.checker.check_model(m, full_check=True)
    types = {t.name: t.data_type for t in m.graph.initializer}
    assert sum(1 for t in types.values() if t == TensorProto.INT4) == summary["weight_qdq"]
    assert any(types[n.input[2]] == TensorProto.INT8 for n in m.graph.node
               if n.op_type == "QuantizeLinear")
    y = ort_run(out, synth["x"])[0]
    assert np.all(np.isfinite(ort_run(out, synth["x"], optimize=True)[0]))
    z = lowbit_run(out, synth["x"], tmp_path)
    step = float(np.abs(y).max()) / 127.0
    assert np.abs(z - y).max() <= step


def test_fixture_weights_eight_times_smaller(tmp_path):
    out = tmp_path / "w4a16.onnx"
    lowbit("quantize", RAW, "--mode", "w4a16", "--out", out)
    fp32 = onnx.load(RAW)
    m = onnx.load(str(out))
    onnx.checker.check_model(m, full_check=True)
    conv_w = {n.input[1] for n in fp32.graph.node if n.op_type == "Conv"}
    f_bytes = sum(len(t.raw_data) or 4 * int(np.prod(t.dims)) for t in fp32.graph.initializer
                  if t.name in conv_w)
    q_bytes = sum(len(t.raw_data) for t in m.graph.initializer if t.name in conv_w)
    assert all(t.data_type == TensorProto.INT4 for t in m.graph.initializer if t.name in conv_w)
    assert q_bytes * 8 <= f_bytes + 8 * len(conv_w), (q_bytes, f_bytes)
    # The whole file (scales, biases and graph included) under a fifth of the float one.
    assert os.path.getsize(out) < 0.2 * os.path.getsize(RAW)
    x = np.random.default_rng(2).random((1, 3, 640, 640), dtype=np.float32)
    y = ort_run(out, x)[0]
    assert np.all(np.isfinite(ort_run(out, x, optimize=True)[0]))
    z = lowbit_run(out, x, tmp_path)
    assert z.shape == y.shape
    step = float(np.abs(y).max()) / 127.0
    assert np.abs(z - y).max() <= 0.05 * step


@pytest.mark.parametrize("args,message", [
    (["--mode", "int8", "--block-size", "32"], "--block-size applies to --mode w4a16 or w4a8"),
    (["--mode", "fp8", "--block-size", "32"], "--block-size applies to --mode w4a16 or w4a8"),
    (["--mode", "w4a16", "--block-size", "-4"], "must be positive"),
    (["--mode", "w4a16", "--high-precision", "fp16"], "fp16 with INT4 weights"),
])
def test_block_size_and_mode_errors(synth, tmp_path, args, message):
    out = tmp_path / "bad.onnx"
    r = lowbit("quantize", synth["model"], "--out", out, "--calib", synth["calib"], *args,
               check=False)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert not out.exists()


def test_blocked_dequantize_in_a_hand_written_model(tmp_path):
    """DequantizeLinear-21 with block_size and int4 x, written by onnx.helper: both engines agree
    with numpy, and a block_size outside the accepted range is an error naming the node."""
    q = np.array([[-8, 7, 1, -1, 3, 0], [2, -2, 5, -5, 6, -6]], np.int8)
    flat = q.reshape(-1).astype(np.uint8) & 0x0F
    raw = bytes((flat[0::2] | (flat[1::2] << 4)).tolist())
    w = helper.make_tensor("w", TensorProto.INT4, [2, 6], raw, raw=True)
    s = numpy_helper.from_array(np.array([[0.5, 2, 0.25], [1, 3, 4]], np.float32), "s")
    for block, ok in [(2, True), (4, False)]:
        dq = helper.make_node("DequantizeLinear", ["w", "s"], ["dq"], axis=1, block_size=block,
                              name="dq_w")
        add = helper.make_node("Add", ["x", "dq"], ["y"], name="add")
        g = helper.make_graph([dq, add], "blocked",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])],
                              [w, s])
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 21)])
        m.ir_version = 10
        path = tmp_path / f"blocked_{block}.onnx"
        onnx.save(m, str(path))
        x = np.zeros((2, 6), np.float32)
        if ok:
            want = q.astype(np.float32) * np.repeat(numpy_helper.to_array(s), 2, axis=1)
            assert np.array_equal(ort_run(path, x)[0], want)
            assert np.array_equal(lowbit_run(path, x, tmp_path), want)
        else:
            r = lowbit("smoke", path, check=False)
            assert r.returncode != 0
            assert "dq_w" in r.stderr and "block_size 4" in r.stderr, r.stderr


def test_gptq_beats_rtn_on_the_calibration_data(synth, tmp_path):
    """--weight-method gptq: same scales and file layout as RTN, different codes, and a smaller
    output error than RTN on the data it saw (ORT measures both)."""
    rtn, gptq = tmp_path / "rtn.onnx", tmp_path / "gptq.onnx"
    lowbit("quantize", synth["model"], "--mode", "w4a16", "--out", rtn)
    summary = json.loads(lowbit("quantize", synth["model"], "--mode", "w4a16", "--weight-method",
                                "gptq", "--calib", synth["calib"], "--out", gptq).stdout)
    assert summary["gptq_weights"] == 3  # the Convs; Gemm/MatMul stay RTN
    mr, mg = onnx.load(str(rtn)), onnx.load(str(gptq))
    onnx.checker.check_model(mg, full_check=True)
    ir = {t.name: t for t in mr.graph.initializer}
    ig = {t.name: t for t in mg.graph.initializer}
    assert ig["c2.W"].data_type == TensorProto.INT4
    assert ir["c2.W_scale"].raw_data == ig["c2.W_scale"].raw_data
    assert ir["c2.W"].raw_data != ig["c2.W"].raw_data
    assert ir["fc.W"].raw_data == ig["fc.W"].raw_data
    calib = np.load(synth["calib"])
    err = {}
    for name, path in (("rtn", rtn), ("gptq", gptq)):
        e = 0.0
        for x in calib:
            e += float(((ort_run(path, x[None])[0] - ort_run(synth["model"], x[None])[0]) ** 2)
                       .sum())
        err[name] = e
    assert err["gptq"] < err["rtn"], err
    x = synth["x"]
    assert np.abs(lowbit_run(gptq, x, tmp_path) - ort_run(gptq, x)[0]).max() <= \
        1e-4 * float(np.abs(ort_run(gptq, x)[0]).max())


@pytest.mark.parametrize("args,message", [
    (["--mode", "w4a16", "--weight-method", "gptq"], "needs calibration data"),
    (["--mode", "int8", "--weight-method", "gptq"], "applies to --mode w4a16 or w4a8"),
    (["--mode", "w4a16", "--weight-method", "adaround"], "needs calibration data"),
    (["--mode", "w4a16", "--bias-correction"], "needs calibration data"),
    (["--mode", "int8", "--bias-correction"], "applies to --mode w4a16 or w4a8"),
    (["--mode", "w4a16", "--weight-method", "obq"], "expected rtn, gptq or adaround"),
    (["--mode", "w4a16", "--weight-method", "adaround", "--adaround-iters", "0"],
     "must be at least 1"),
])
def test_weight_method_errors(synth, tmp_path, args, message):
    out = tmp_path / "bad.onnx"
    extra = ["--calib", synth["calib"]] if args[1] == "int8" else []
    r = lowbit("quantize", synth["model"], "--out", out, *args, *extra, check=False)
    assert r.returncode != 0
    assert message in r.stderr, r.stderr
    assert not out.exists()


def codes_and_scales(m):
    """{weight name: (INT4 codes, scale tensor)} of a written model."""
    inits = {t.name: t for t in m.graph.initializer}
    out = {}
    for n in m.graph.node:
        if n.op_type == "DequantizeLinear" and inits[n.input[0]].data_type == TensorProto.INT4:
            t = inits[n.input[0]]
            out[t.name] = (unpack_int4(t.raw_data, int(np.prod(t.dims))),
                           numpy_helper.to_array(inits[n.input[1]]))
    return out


def calib_error(model, reference, calib):
    e = 0.0
    for x in calib:
        e += float(((ort_run(model, x[None])[0] - ort_run(reference, x[None])[0]) ** 2).sum())
    return e


def test_adaround_beats_rtn_and_runs_in_ort(synth, tmp_path):
    """--weight-method adaround: RTN's scales, every code RTN's or one step from it, a smaller
    output error than RTN on the calibration data (ORT measures both), and the engine agrees
    with ORT."""
    rtn, ada = tmp_path / "rtn.onnx", tmp_path / "ada.onnx"
    lowbit("quantize", synth["model"], "--mode", "w4a16", "--out", rtn)
    summary = json.loads(lowbit("quantize", synth["model"], "--mode", "w4a16", "--weight-method",
                                "adaround", "--adaround-iters", 300, "--calib", synth["calib"],
                                "--out", ada).stdout)
    assert summary["adaround_weights"] == 3  # the Convs; Gemm/MatMul stay RTN
    assert summary["adaround_flipped"] > 0
    mr, ma = onnx.load(str(rtn)), onnx.load(str(ada))
    onnx.checker.check_model(ma, full_check=True)
    cr, ca = codes_and_scales(mr), codes_and_scales(ma)
    assert cr.keys() == ca.keys()
    for name in cr:
        np.testing.assert_array_equal(cr[name][1], ca[name][1])
        assert np.abs(cr[name][0].astype(int) - ca[name][0].astype(int)).max() <= 1, name
    np.testing.assert_array_equal(cr["fc.W"][0], ca["fc.W"][0])
    calib = np.load(synth["calib"])
    e_rtn = calib_error(rtn, synth["model"], calib)
    e_ada = calib_error(ada, synth["model"], calib)
    assert e_ada < e_rtn, (e_ada, e_rtn)
    x = synth["x"]
    ref = ort_run(ada, x)[0]
    # ORT's optimized graph computes its int4 DQ -> MatMul fusions differently (see
    # test_w4a16_is_real_int4_and_runs_in_ort for that spread).
    yo = ort_run(ada, x, optimize=True)[0]
    assert np.all(np.isfinite(yo)) and np.abs(yo - ref).max() <= 0.02 * float(np.abs(ref).max())
    assert np.abs(lowbit_run(ada, x, tmp_path) - ref).max() <= 1e-4 * float(np.abs(ref).max())


def with_output(path, tensor, out):
    m = onnx.load(str(path))
    m.graph.output.append(helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None))
    onnx.save(m, str(out))
    return out


def test_bias_correction_zeroes_the_first_convs_mean_error(synth, tmp_path):
    """--bias-correction with RTN: the same INT4 codes, corrected biases, and on the calibration
    data the first Conv's output (whose input is exact) has no mean error left per channel."""
    rtn, bc = tmp_path / "rtn.onnx", tmp_path / "bc.onnx"
    lowbit("quantize", synth["model"], "--mode", "w4a16", "--out", rtn)
    summary = json.loads(lowbit("quantize", synth["model"], "--mode", "w4a16",
                                "--bias-correction", "--calib", synth["calib"], "--out",
                                bc).stdout)
    assert summary["bias_corrected"] == 3
    mr, mb = onnx.load(str(rtn)), onnx.load(str(bc))
    onnx.checker.check_model(mb, full_check=True)
    cr, cb = codes_and_scales(mr), codes_and_scales(mb)
    for name in cr:
        np.testing.assert_array_equal(cr[name][0], cb[name][0])
    calib = np.load(synth["calib"])
    mean_err = {}
    ref = with_output(synth["model"], "c1/conv", tmp_path / "ref1.onnx")
    for name, path in (("rtn", rtn), ("bc", bc)):
        q = with_output(path, "c1/conv", tmp_path / f"{name}1.onnx")
        d = np.concatenate([ort_run(q, x[None])[1] - ort_run(ref, x[None])[1] for x in calib])
        mean_err[name] = np.abs(d.mean(axis=(0, 2, 3))).max()
    assert mean_err["rtn"] > 1e-3, mean_err
    assert mean_err["bc"] < 1e-5 + 1e-3 * mean_err["rtn"], mean_err
    x = synth["x"]
    out = ort_run(bc, x)[0]
    assert np.abs(lowbit_run(bc, x, tmp_path) - out).max() <= 1e-4 * float(np.abs(out).max())
