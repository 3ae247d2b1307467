"""Int8 data movement in Q/DQ graphs (issue 12 item 1): Concat on channels and MaxPool reading
DequantizeLinear outputs and ending in a QuantizeLinear run as one step on the int8 codes
(runtime/kernels/cpu/qmove.cpp), requantizing through a table built with the simulation's own
arithmetic where the scales differ. Against the float simulation (LOWBIT_LOWP_KERNELS=0) the
step is exact (no tie can differ: each code goes through the same DQ and Q arithmetic), and
against ONNX Runtime without graph optimizations it agrees up to one code; every fallback
reason is shown.
"""
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from lowp_helpers import BIN, kernels, qdq, run_lowbit
from onnx import TensorProto, helper, numpy_helper


def save(path, nodes, inits, inputs, out_shape, opset=13):
    for i, n in enumerate(nodes):
        n.name = n.name or f"{n.op_type}_{i}"
    g = helper.make_graph(
        nodes, "moves",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def concat_model(path, scales=(0.03, 0.02, None), y_scale=0.03, axis=1, rank=4, hw=9):
    """Concat(DQ(Q(a)), DQ(Q(b)), Relu(c) ...) -> Q/DQ -> y. A scale None is a float input."""
    nodes, inits, inputs, parts = [], [], [], []
    chans = [8, 16, 5][:len(scales)]
    for i, (s, c) in enumerate(zip(scales, chans)):
        name = f"x{i}"
        shape = [1, c, hw, hw] if rank == 4 else [1, c, hw * hw]
        if axis != 1:
            shape = [1, 8, hw, hw]
        inputs.append((name, shape))
        if s is None:
            nodes.append(helper.make_node("Relu", [name], [name + "_r"]))
            parts.append(name + "_r")
        else:
            parts.append(qdq(name, name, s, nodes, inits))
    nodes.append(helper.make_node("Concat", parts, ["cat"], axis=axis, name="the_concat"))
    t = qdq("y", "cat", y_scale, nodes, inits)
    nodes.append(helper.make_node("Identity", [t], ["y"]))
    shape = list(inputs[0][1])
    shape[axis] = sum(s[axis] for _, s in inputs)
    return save(path, nodes, inits, inputs, shape)


def resize_concat_model(path, mode="nearest", r_scale=0.021, y_scale=0.03, hw=6):
    """Concat(Resize(DQ(Q(a)), x2), DQ(Q(b))) -> Q/DQ -> y (YOLO's upsample-and-concat)."""
    nodes, inits = [], []
    a = qdq("a", "a", r_scale, nodes, inits)
    b = qdq("b", "b", y_scale, nodes, inits)
    inits.append(helper.make_tensor("roi", TensorProto.FLOAT, [0], []))
    inits.append(helper.make_tensor("sc", TensorProto.FLOAT, [4], [1, 1, 2, 2]))
    attrs = {"mode": mode}
    if mode == "nearest":
        attrs.update(coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    nodes.append(helper.make_node("Resize", [a, "roi", "sc"], ["up"], **attrs))
    nodes.append(helper.make_node("Concat", ["up", b], ["cat"], axis=1, name="the_concat"))
    t = qdq("y", "cat", y_scale, nodes, inits)
    nodes.append(helper.make_node("Identity", [t], ["y"]))
    return save(path, nodes, inits, [("a", [1, 8, hw, hw]), ("b", [1, 5, 2 * hw, 2 * hw])],
                [1, 13, 2 * hw, 2 * hw])


def maxpool_model(path, x_scale=0.02, y_scale=0.03, k=5, stride=1, pad=2, hw=10,
                  indices=False):
    nodes, inits = [], []
    t = qdq("x", "x", x_scale, nodes, inits)
    outs = ["mp", "mp_idx"] if indices else ["mp"]
    nodes.append(helper.make_node("MaxPool", [t], outs, kernel_shape=[k, k],
                                  strides=[stride, stride], pads=[pad] * 4, name="the_pool"))
    t = qdq("y", "mp", y_scale, nodes, inits)
    nodes.append(helper.make_node("Identity", [t], ["y"]))
    oh = (hw + 2 * pad - k) // stride + 1
    return save(path, nodes, inits, [("x", [1, 24, hw, hw])], [1, 24, oh, oh])


def inputs_for(path, seed=0):
    m = onnx.load(str(path))
    rng = np.random.default_rng(seed)
    return [rng.normal(0, 1.5, [d.dim_value for d in i.type.tensor_type.shape.dim])
            .astype(np.float32) for i in m.graph.input]


def ort_run(path, xs, optimized):
    so = ort.SessionOptions()
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimized
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    return s.run(None, {i.name: x for i, x in zip(s.get_inputs(), xs)})[0]


CASES = {
    "concat_same_scale_copy": lambda p: concat_model(p, scales=(0.03, 0.03)),
    "concat_requantize_and_float": lambda p: concat_model(p, scales=(0.03, 0.0173, None)),
    "concat_float_first": lambda p: concat_model(p, scales=(None, 0.011)),
    "resize_concat": lambda p: resize_concat_model(p),
    "resize_concat_same_scale": lambda p: resize_concat_model(p, r_scale=0.03),
    "maxpool_same_scale": lambda p: maxpool_model(p, x_scale=0.03, y_scale=0.03),
    "maxpool_requantize": lambda p: maxpool_model(p, x_scale=0.0123, y_scale=0.021),
    "maxpool_stride2": lambda p: maxpool_model(p, k=3, stride=2, pad=1, hw=11),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("threads", [1, 2])
def test_int8_move_equals_simulation(tmp_path, name, threads):
    path = CASES[name](tmp_path / f"{name}.onnx")
    rep = kernels(path)
    assert rep["steps"].get("qmove_int8") == 1, rep
    assert rep["qdq_moves"] == 1 and rep["int8_moves"] == 1, rep
    assert rep["fallbacks"] == [], rep
    if name.startswith("resize"):  # the Resize is part of the int8 step (on the codes)
        assert not any(k.startswith("resize") for k in rep["steps"]), rep
        assert rep["dq_skipped"] == 2, rep
    sim_rep = kernels(path, lowp=False)
    assert sim_rep["steps"].get("qmove_int8") is None, sim_rep
    xs = inputs_for(path)
    fast = run_lowbit(path, xs, tmp_path, True, threads)
    sim = run_lowbit(path, xs, tmp_path, False, threads)
    assert fast.shape == sim.shape
    # The same DQ and Q arithmetic per code: bit-identical.
    np.testing.assert_array_equal(fast, sim)
    # ONNX Runtime (unoptimized: its own DQ -> op -> Q) within one code.
    ref = ort_run(path, xs, optimized=False)
    assert np.abs(fast.astype(np.float64) - ref).max() <= 0.03 * 1.0001


FALLBACKS = {
    "concat_not_channels": (lambda p: concat_model(p, scales=(0.03, 0.02), axis=2),
                            "Concat not on the channel axis"),
    "concat_rank3": (lambda p: concat_model(p, scales=(0.03, 0.02), rank=3),
                     "only 4-D (NHWC) moves are int8"),
    "resize_linear": (lambda p: resize_concat_model(p, mode="linear"),
                      "not a nearest integer up-scaling"),
    "maxpool_indices": (lambda p: maxpool_model(p, indices=True),
                        "MaxPool with an Indices output"),
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_fallback_reasons(tmp_path, name):
    make, reason = FALLBACKS[name]
    path = make(tmp_path / f"{name}.onnx")
    rep = kernels(path)
    assert rep["steps"].get("qmove_int8") is None, rep
    assert rep["qdq_moves"] == 1 and rep["int8_moves"] == 0, rep
    assert len(rep["fallbacks"]) == 1 and reason in rep["fallbacks"][0]["reason"], rep
    assert rep["fallbacks"][0]["node"] in ("the_concat", "the_pool")
    # The fallback is today's simulation.
    xs = inputs_for(path, 1)
    np.testing.assert_array_equal(run_lowbit(path, xs, tmp_path, True),
                                  run_lowbit(path, xs, tmp_path, False))


def test_all_float_concat_is_not_an_int8_move(tmp_path):
    """Nothing to move as int8: the Concat stays a float step (no fallback reported)."""
    path = concat_model(tmp_path / "f.onnx", scales=(None, None))
    rep = kernels(path)
    assert rep["qdq_moves"] == 0 and rep["fallbacks"] == [], rep


def test_input_quantization_writes_nhwc(tmp_path):
    """x -> Q -> DQ -> Conv(DQ(w)): the QuantizeLinear of the plain input writes channels-last
    codes itself (no int8 reorder step before the int8 conv); the result is unchanged."""
    from onnx import numpy_helper
    nodes, inits = [], []
    t = qdq("x", "x", 0.02, nodes, inits)
    rng = np.random.default_rng(5)
    w = rng.normal(0, 0.2, (16, 3, 3, 3)).astype(np.float32)
    ws = (np.abs(w).reshape(16, -1).max(axis=1) / 127).astype(np.float32)
    inits.append(numpy_helper.from_array(
        np.clip(np.rint(w / ws[:, None, None, None]), -127, 127).astype(np.int8), "w_q"))
    inits.append(numpy_helper.from_array(ws, "w_s"))
    inits.append(helper.make_tensor("w_z", TensorProto.INT8, [16], [0] * 16))
    nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=0))
    nodes.append(helper.make_node("Conv", [t, "w"], ["c"], kernel_shape=[3, 3], pads=[1] * 4))
    t = qdq("y", "c", 0.03, nodes, inits)
    nodes.append(helper.make_node("Identity", [t], ["y"]))
    path = save(tmp_path / "first.onnx", nodes, inits, [("x", [1, 3, 37, 29])], [1, 16, 37, 29])
    rep = kernels(path)
    assert rep["steps"].get("qconv_int8") == 1, rep
    # No reorder step is left (the simulation's float conv has one before it).
    assert "reorder" not in rep["steps"], rep
    assert kernels(path, lowp=False)["steps"].get("reorder", 0) >= 1
    xs = inputs_for(path, 2)
    fast = run_lowbit(path, xs, tmp_path, True, 2)
    sim = run_lowbit(path, xs, tmp_path, False, 2)
    diff = np.abs(fast.astype(np.float64) - sim)
    assert diff.max() <= 0.03 * 1.0001 and (diff > 0).mean() <= 0.01


# ---- a float conv result quantized by its producer into the int8 Concat ------------------

def conv_concat_model(path, split=False, keep=False, out_c=False, hw=12):
    """x -> Q/DQ -> Conv(DQ(w_q), b) -> SiLU -> c (float32); Concat(c | Split(c) parts,
    DQ(Q(z))) -> Q/DQ -> y. keep: c also feeds a second graph output (c stays a tensor).
    out_c: y is c itself (the conv alone, for the expected codes)."""
    rng = np.random.default_rng(5)
    nodes, inits = [], []
    xd = qdq("x", "x", 0.02, nodes, inits)
    w = rng.normal(0, 0.2, (24, 16, 3, 3)).astype(np.float32)
    ws = (np.abs(w).reshape(24, -1).max(axis=1) / 127).astype(np.float32)
    wq = np.clip(np.rint(w / ws.reshape(24, 1, 1, 1)), -127, 127).astype(np.int8)
    inits += [numpy_helper.from_array(wq, "w_q"), numpy_helper.from_array(ws, "w_s"),
              helper.make_tensor("w_z", TensorProto.INT8, [24], [0] * 24),
              numpy_helper.from_array(rng.normal(0, 0.5, 24).astype(np.float32), "bias")]
    nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=0))
    nodes.append(helper.make_node("Conv", [xd, "w", "bias"], ["conv"], kernel_shape=[3, 3],
                                  pads=[1] * 4, name="the_conv"))
    nodes.append(helper.make_node("Sigmoid", ["conv"], ["sg"]))
    nodes.append(helper.make_node("Mul", ["conv", "sg"], ["c"]))
    outs = [("y", [1, 24 if out_c else 29, hw, hw])]
    if out_c:
        nodes.append(helper.make_node("Identity", ["c"], ["y"]))
    else:
        zd = qdq("z", "z", 0.03, nodes, inits)
        parts = ["c", zd]
        if split:
            inits.append(helper.make_tensor("sp", TensorProto.INT64, [2], [8, 16]))
            nodes.append(helper.make_node("Split", ["c", "sp"], ["c0", "c1"], axis=1))
            parts = ["c0", zd, "c1"]
        nodes.append(helper.make_node("Concat", parts, ["cat"], axis=1, name="the_concat"))
        t = qdq("y", "cat", 0.03, nodes, inits)
        nodes.append(helper.make_node("Identity", [t], ["y"]))
        if keep:
            nodes.append(helper.make_node("Relu", ["c"], ["c_out"]))
            outs.append(("c_out", [1, 24, hw, hw]))
    for i, n in enumerate(nodes):
        n.name = n.name or f"{n.op_type}_{i}"
    g = helper.make_graph(
        nodes, "conv_concat",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, hw, hw])] +
        ([] if out_c else [helper.make_tensor_value_info("z", TensorProto.FLOAT,
                                                         [1, 5, hw, hw])]),
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outs], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, str(path))
    return path


def quantize_np(v, s):
    """QuantizeLinear int8, zero point 0: float32 division, ties to even, saturation."""
    return np.clip(np.rint(v.astype(np.float32) / np.float32(s)), -128, 127)


@pytest.mark.parametrize("variant", ["whole", "split", "keep"])
@pytest.mark.parametrize("threads", [1, 2])
def test_conv_quantizes_its_concat_part(tmp_path, variant, threads):
    """The int8 conv writing float32 into an int8 Concat -> QuantizeLinear writes that part's
    codes itself (memory_plan.h plan_quantized_concat_slices): bit-identical to quantizing
    the conv's own float32 result as the Concat step did."""
    path = conv_concat_model(tmp_path / "m.onnx", split=variant == "split",
                             keep=variant == "keep")
    env = dict(os.environ, LOWBIT_PROFILE="1", LOWBIT_LOWP_KERNELS="1")
    xs = inputs_for(path)
    for i, x in enumerate(xs):
        np.save(tmp_path / f"in{i}.npy", x)
    r = subprocess.run([BIN, "smoke", str(path), "--input", str(tmp_path / "in0.npy"),
                        "--input", str(tmp_path / "in1.npy"), "--runs", "1", "--warmup", "0",
                        "--threads", str(threads)], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    parts = 2 if variant == "split" else 1
    assert f"{parts} quantized by their producers" in r.stderr, r.stderr
    assert ">qconcat" in r.stderr, r.stderr
    fast = run_lowbit(path, xs, tmp_path, True, threads, tag="a")
    conv = run_lowbit(conv_concat_model(tmp_path / "c.onnx", out_c=True), xs[:1], tmp_path,
                      True, threads, tag="c")
    want = np.concatenate([quantize_np(conv[:, :8], 0.03), quantize_np(xs[1], 0.03),
                           quantize_np(conv[:, 8:], 0.03)] if variant == "split" else
                          [quantize_np(conv, 0.03), quantize_np(xs[1], 0.03)], axis=1)
    np.testing.assert_array_equal(fast, (want * np.float32(0.03)).astype(np.float32))
    # And the simulation within one code (the int8 conv's float sums, rounded in another order).
    sim = run_lowbit(path, xs, tmp_path, False, threads, tag="s")
    assert np.abs(fast.astype(np.float64) - sim).max() <= 0.03 * 1.0001
