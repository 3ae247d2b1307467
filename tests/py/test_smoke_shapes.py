"""Input shapes in `lowbit smoke`, and parameters in `lowbit info`.

- A model with symbolic input dims takes its shape from the --input .npy (not the 224x224
  fallback), and its outputs then agree with onnxruntime's on that input.
- --batch N sets the free batch dim of random inputs; a fixed batch refuses another --batch, and a
  file whose shape contradicts a fixed dim is refused with its name.
- `info` counts the values of Constant nodes as parameters, as well as the initializers (the
  bundled model: 1221598 in initializers + 41 in Constant nodes, counted here with onnx).
"""
import json
import os
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SOURCE_DIR = Path(os.environ.get("LOWBIT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUNDLED = SOURCE_DIR / "assets" / "shapes-yolov10m-w0p1875-raw.onnx"

pytestmark = pytest.mark.skipif(not LOWBIT or not Path(LOWBIT).exists(),
                                reason="LOWBIT_BIN is not set to the lowbit binary")


def lowbit(*args, ok=True):
    r = subprocess.run([LOWBIT, *map(str, args)], capture_output=True, text=True)
    if ok:
        assert r.returncode == 0, f"lowbit {' '.join(map(str, args))}:\n{r.stderr}"
    return r


def conv_model(path, batch="N"):
    """x[batch,3,H,W] -> Conv 3x3 (weights an initializer, bias a Constant node) -> Relu."""
    rng = np.random.default_rng(0)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    nodes = [
        helper.make_node("Constant", [], ["b"], value=numpy_helper.from_array(b, "b")),
        helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["y"]),
    ]
    g = helper.make_graph(
        nodes, "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, "H", "W"])],
        [numpy_helper.from_array(w, "w")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save(m, path)
    return w.size + b.size


def smoke(model, work, *args):
    out = Path(work) / "smoke"
    lowbit("smoke", model, "--out", out, "--save-outputs", "--runs", "1", "--warmup", "0",
           "--threads", "1", *args)
    summary = json.loads((out / "summary.json").read_text())
    return summary, np.load(out / "outputs" / "0.npy")


def test_symbolic_input_takes_the_file_shape(tmp_path):
    model = tmp_path / "conv.onnx"
    conv_model(model)
    x = np.random.default_rng(1).random((2, 3, 20, 28), dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    summary, y = smoke(model, tmp_path, "--input", tmp_path / "x.npy")
    inp = summary["inputs"][0]
    assert inp["resolved_shape"] == [2, 3, 20, 28]
    assert inp["shape_source"] == "--input" and not inp["used_fallbacks"]
    ref = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    assert y.shape == (2, 4, 20, 28)
    np.testing.assert_allclose(y, ref, rtol=1e-5, atol=1e-5)


def test_batch_of_random_inputs(tmp_path):
    model = tmp_path / "conv.onnx"
    conv_model(model)
    summary, y = smoke(model, tmp_path, "--batch", 3, "--default-image-size", 16)
    assert summary["inputs"][0]["resolved_shape"] == [3, 3, 16, 16]
    assert summary["inputs"][0]["used_fallbacks"]
    assert y.shape == (3, 4, 16, 16)
    # Batch items are independent: each equals the model run on that item alone.
    x = np.random.default_rng(2).random((3, 3, 16, 16), dtype=np.float32)
    np.save(tmp_path / "x3.npy", x)
    _, y3 = smoke(model, tmp_path, "--input", tmp_path / "x3.npy", "--batch", 3)
    np.save(tmp_path / "x1.npy", x[1:2])
    _, y1 = smoke(model, tmp_path, "--input", tmp_path / "x1.npy")
    np.testing.assert_allclose(y3[1:2], y1, rtol=1e-6, atol=1e-6)


def test_shapes_that_do_not_fit_are_refused(tmp_path):
    fixed = tmp_path / "fixed.onnx"
    conv_model(fixed, batch=1)
    r = lowbit("smoke", fixed, "--batch", 2, "--default-image-size", 8, "--runs", 1, ok=False)
    assert r.returncode != 0 and "fixed batch size 1" in r.stderr and "'x'" in r.stderr, r.stderr

    model = tmp_path / "conv.onnx"
    conv_model(model)
    np.save(tmp_path / "five.npy", np.zeros((1, 5, 8, 8), np.float32))
    r = lowbit("smoke", model, "--input", tmp_path / "five.npy", "--runs", 1, ok=False)
    assert r.returncode != 0 and "five.npy" in r.stderr and "'x'" in r.stderr, r.stderr

    np.save(tmp_path / "two.npy", np.zeros((2, 3, 8, 8), np.float32))
    r = lowbit("smoke", model, "--input", tmp_path / "two.npy", "--batch", 3, "--runs", 1,
               ok=False)
    assert r.returncode != 0 and "--batch 3" in r.stderr, r.stderr


def onnx_param_count(path):
    m = onnx.load(str(path))
    n = sum(int(np.prod(t.dims)) for t in m.graph.initializer)
    for node in m.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    n += int(np.prod(a.t.dims))
                elif a.name in ("value_float", "value_int"):
                    n += 1
                elif a.name in ("value_floats", "value_ints"):
                    n += len(a.floats) + len(a.ints)
    return n


def test_info_counts_constant_nodes(tmp_path):
    model = tmp_path / "conv.onnx"
    expected = conv_model(model)
    info = json.loads(lowbit("info", model, "--json", "--input-shape", "x:1,3,8,8").stdout)
    assert info["params"] == expected == 4 * 3 * 3 * 3 + 4
    assert info["param_bytes"] == 4 * expected

    if BUNDLED.exists():
        info = json.loads(lowbit("info", BUNDLED, "--json").stdout)
        assert info["params"] == onnx_param_count(BUNDLED) == 1221598 + 41


def dynamic_batch_bundled(path):
    """The bundled model with a free batch dim: input/output dim 0 symbolic, and each Reshape's
    shape constant keeps dim 0 of its input (0) instead of the exported 1."""
    m = onnx.load(str(BUNDLED))
    shape_inputs = {n.input[1] for n in m.graph.node if n.op_type == "Reshape"}
    for n in m.graph.node:
        if n.op_type == "Constant" and n.output[0] in shape_inputs:
            a = numpy_helper.to_array(n.attribute[0].t).copy()
            assert a[0] == 1
            a[0] = 0
            n.attribute[0].t.CopyFrom(numpy_helper.from_array(a, n.attribute[0].t.name))
    for init in m.graph.initializer:
        assert init.name not in shape_inputs
    for vi in list(m.graph.input) + list(m.graph.output):
        vi.type.tensor_type.shape.dim[0].dim_param = "batch"
    del m.graph.value_info[:]
    onnx.save(m, str(path))


@pytest.mark.skipif(not BUNDLED.exists(), reason="bundled model missing")
def test_eval_in_batches(tmp_path):
    model = tmp_path / "dyn.onnx"
    dynamic_batch_bundled(model)

    def eval_json(*args, name):
        lowbit("eval", model, "--max-images", 7, "--threads", 2, "--out", tmp_path / name, *args)
        return json.loads((tmp_path / name).read_text())

    one = eval_json(name="b1.json")
    three = eval_json("--batch", 3, name="b3.json")  # 3 + 3 + 1 (padded)
    assert three["batch"] == 3 and three["metrics"]["num_images"] == 7
    assert three["metrics"]["num_detections"] == one["metrics"]["num_detections"]
    np.testing.assert_allclose(three["metrics"]["stats"], one["metrics"]["stats"], atol=1e-6)

    # smoke on the same model: a batch of 2 is two single-image runs.
    x = np.random.default_rng(3).random((2, 3, 320, 320), dtype=np.float32)
    np.save(tmp_path / "x2.npy", x)
    _, y2 = smoke(model, tmp_path, "--input", tmp_path / "x2.npy")
    np.save(tmp_path / "x1.npy", x[1:])
    _, y1 = smoke(model, tmp_path, "--input", tmp_path / "x1.npy")
    assert y2.shape[0] == 2
    np.testing.assert_allclose(y2[1:], y1, rtol=1e-4, atol=1e-4)

    # The bundled model's batch is fixed at 1.
    r = lowbit("eval", BUNDLED, "--max-images", 2, "--batch", 2, ok=False)
    assert r.returncode != 0 and "fixed batch size 1" in r.stderr, r.stderr
