"""Shared by the low-precision kernel tests (test_lowp_kernels, test_lowp_moves,
test_fp8_kernels): lowbit runs with the low-precision kernels on or off
(LOWBIT_LOWP_KERNELS), the kernel report of `info --json`, and Q -> DQ pairs for hand-built
ONNX graphs."""
import json
import os
import subprocess

import numpy as np
from onnx import TensorProto, helper

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
