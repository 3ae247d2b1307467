"""Shared by the low-precision kernel tests (test_lowp_kernels, test_lowp_moves,
test_fp8_kernels, test_w4a8_kernels): lowbit runs with the low-precision kernels on or off
(LOWBIT_LOWP_KERNELS), the kernel report of `info --json`, Q -> DQ pairs for hand-built
ONNX graphs, and the Q/DQ conv pattern each of them varies (conv_pattern)."""
import json
import os
import subprocess

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")


def lowbit(*args, lowp=True, check=True, env_extra=None):
    env = dict(os.environ)
    env["LOWBIT_LOWP_KERNELS"] = "1" if lowp else "0"
    env.pop("LOWBIT_PROFILE", None)
    env.update(env_extra or {})
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


def run_lowbit(path, xs, tmp, lowp, threads=1, tag="run"):
    """`smoke` on the inputs xs; the first output."""
    args = []
    for i, x in enumerate(xs):
        np.save(tmp / f"{tag}_in{i}.npy", x)
        args += ["--input", tmp / f"{tag}_in{i}.npy"]
    out = tmp / f"{tag}_{int(lowp)}_{threads}"
    lowbit("smoke", path, *args, "--out", out, "--save-outputs", "--runs", 1, "--warmup", 0,
           "--threads", threads, lowp=lowp)
    return np.load(out / "outputs" / "0.npy")


def kernels(path, lowp=True, env_extra=None):
    """The "kernels" report of `lowbit info --json`."""
    r = lowbit("info", path, "--json", lowp=lowp, env_extra=env_extra)
    return json.loads(r.stdout)["kernels"]


def qdq(name, x, scale, nodes, inits, dtype=TensorProto.INT8, zp=0):
    """Appends Q(x) -> DQ with a scalar scale and zero point; returns the DQ output name."""
    inits.append(helper.make_tensor(name + "_s", TensorProto.FLOAT, [], [scale]))
    inits.append(helper.make_tensor(name + "_z", dtype, [], [zp]))
    nodes.append(helper.make_node("QuantizeLinear", [x, name + "_s", name + "_z"], [name + "_q"]))
    nodes.append(helper.make_node("DequantizeLinear", [name + "_q", name + "_s", name + "_z"],
                                  [name + "_d"]))
    return name + "_d"


def conv_pattern(path, weights, c=16, m=16, hw=12, k=3, stride=1, group=1, bias=True, silu=True,
                 residual=None, out_q=True, x_scale=0.02, r_scale=0.015, y_scale=0.03,
                 x_dtype=TensorProto.INT8, x_zp=0, q_dtype=TensorProto.INT8, opset=13,
                 ir_version=8, full_check=False, seed=0):
    """Saves x -> Q/DQ -> Conv(W) [+bias] [-> SiLU] [-> Add(R)] [-> Q/DQ] -> y at `path`.

    weights(w, nodes, inits) appends what makes the conv's weight tensor "w" from the float
    weights w (drawn here, N(0, 0.2), before the bias). x is quantized as x_dtype with zero
    point x_zp; R and y as q_dtype. residual: None, "float" (R = Relu(x)) or "q"
    (R = DQ(Q(Relu(x)))), ready before the conv runs as in YOLO's bottlenecks."""
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    xd = qdq("x", "x", x_scale, nodes, inits, x_dtype, x_zp)
    if residual:
        nodes.append(helper.make_node("Relu", ["x"], ["r"]))
        r = qdq("r", "r", r_scale, nodes, inits, q_dtype) if residual == "q" else "r"
    weights(rng.normal(0, 0.2, (m, c // group, k, k)).astype(np.float32), nodes, inits)
    conv_in = [xd, "w"]
    if bias:
        inits.append(numpy_helper.from_array(rng.normal(0, 0.5, m).astype(np.float32), "b"))
        conv_in.append("b")
    pad = k // 2
    nodes.append(helper.make_node("Conv", conv_in, ["c"], kernel_shape=[k, k],
                                  strides=[stride, stride], pads=[pad] * 4, group=group))
    t = "c"
    if silu:
        nodes.append(helper.make_node("Sigmoid", [t], ["sg"]))
        nodes.append(helper.make_node("Mul", [t, "sg"], ["si"]))
        t = "si"
    if residual:
        nodes.append(helper.make_node("Add", [t, r], ["a"]))
        t = "a"
    if out_q:
        t = qdq("y", t, y_scale, nodes, inits, q_dtype)
    nodes.append(helper.make_node("Identity", [t], ["y"]))
    oh = (hw + 2 * pad - k) // stride + 1
    for i, n in enumerate(nodes):
        n.name = f"{n.op_type}_{i}"
    g = helper.make_graph(nodes, "pattern",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, c, hw, hw])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, m, oh, oh])],
                          inits)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = ir_version
    onnx.checker.check_model(model, full_check=full_check)
    onnx.save(model, str(path))
    return path
