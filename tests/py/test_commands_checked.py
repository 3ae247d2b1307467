"""Every command's numbers checked against an independent computation.

- `info`: parameters (elements and bytes of the initializers), MACs of Conv/MatMul/Gemm (from the
  shapes the `onnx` package infers), op histogram, I/O, and a peak activation memory between the
  largest single activation and the sum of all of them.
- `smoke`: the seeded input regenerated here (std::mt19937_64 + libstdc++'s
  uniform_real_distribution<float>, written out in numpy), the outputs equal ONNX Runtime's on it,
  and the per-output statistics of summary.json equal numpy's on the saved outputs.
- `sensitivity`: output-mse and cosine of single nodes equal numpy's on ONNX Runtime outputs of
  the model `quantize` writes with only that node quantized; `--metric map` equals the mAP drop
  `eval` measures for that model; `--reference-runs` gives the fast path's local-sqnr.
- `quantize --explain`: the text for the bundled model, INT8 and FP8, pinned as goldens
  (tests/golden/explain-bundled-{int8,fp8}.txt; LOWBIT_UPDATE_GOLDEN=1 rewrites them).
"""
import collections
import json
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ASSETS = os.path.join(SRC, "assets")
MODEL = os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx")
E2E = os.path.join(ASSETS, "shapes-yolov10m-w0p1875.onnx")
GOLDEN = os.path.join(SRC, "tests", "golden")
FIXTURES = [MODEL, E2E, os.path.join(SRC, "tests", "models", "yolov10m-w0p1875-raw.onnx")]


def lowbit(*args):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"lowbit {' '.join(map(str, args))}:\n{r.stderr}\n{r.stdout}"
    return r


def ort_session(model, outputs=()):
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.intra_op_num_threads = 2
    return ort.InferenceSession(model if isinstance(model, bytes) else str(model), so,
                                providers=["CPUExecutionProvider"])


# ---------------------------------------------------------------------------------------------
# info

def onnx_facts(path):
    m = onnx.load(path)
    inferred = onnx.shape_inference.infer_shapes(m)
    shapes = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(
            inferred.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in m.graph.initializer}
    for name, a in inits.items():
        shapes[name] = list(a.shape)
    macs = 0
    for n in m.graph.node:
        if n.op_type == "Conv":
            w = shapes[n.input[1]]
            macs += int(np.prod(shapes[n.output[0]])) * int(np.prod(w[1:]))
        elif n.op_type == "MatMul":
            macs += int(np.prod(shapes[n.output[0]])) * shapes[n.input[0]][-1]
        elif n.op_type == "Gemm":
            a = shapes[n.input[0]]
            trans_a = any(at.name == "transA" and at.i for at in n.attribute)
            macs += int(np.prod(shapes[n.output[0]])) * (a[0] if trans_a else a[1])
    acts = [int(np.prod(shapes[o])) * 4 for n in m.graph.node for o in n.output
            if o in shapes and o not in inits]
    # Parameters: the initializers and the values of Constant nodes (as the onnx package
    # counts them: every constant tensor the graph carries).
    consts = [onnx.helper.get_attribute_value(a) for n in m.graph.node
              if n.op_type == "Constant" for a in n.attribute]
    def as_array(v):
        if isinstance(v, onnx.TensorProto):
            return onnx.numpy_helper.to_array(v)
        is_float = isinstance(v, float) or (isinstance(v, list) and v and isinstance(v[0], float))
        return np.asarray(v, np.float32 if is_float else np.int64)

    const_arrays = [as_array(v) for v in consts if not isinstance(v, (bytes, str))]
    values = list(inits.values()) + const_arrays
    return {
        "params": sum(int(a.size) for a in values),
        "param_bytes": sum(int(a.nbytes) for a in values),
        "macs": macs,
        "nodes": len(m.graph.node),
        "op_histogram": dict(collections.Counter(n.op_type for n in m.graph.node)),
        "inputs": [(i.name, shapes[i.name]) for i in m.graph.input if i.name not in inits],
        "outputs": [(o.name, shapes[o.name]) for o in m.graph.output],
        "opset": {o.domain: o.version for o in m.opset_import}[""],
        "largest_activation": max(acts),
        "all_activations": sum(acts),
    }


@pytest.mark.parametrize("path", FIXTURES, ids=os.path.basename)
def test_info_matches_the_onnx_package(path):
    got = json.loads(lowbit("info", path, "--json").stdout)
    want = onnx_facts(path)
    for key in ("params", "param_bytes", "macs", "nodes", "op_histogram", "opset"):
        assert got[key] == want[key], key
    assert [(i["name"], i["shape"]) for i in got["inputs"]] == want["inputs"]
    assert [(o["name"], o["shape"]) for o in got["outputs"]] == want["outputs"]
    assert want["largest_activation"] <= got["peak_activation_bytes"] <= want["all_activations"]
    text = lowbit("info", path).stdout
    assert f"parameters  {want['params']} " in text
    assert f"MACs        {want['macs'] / 1e9:.3f} G" in text


# ---------------------------------------------------------------------------------------------
# smoke

MT_A = np.uint64(0xB5026F5AA96619E9)
UPPER = np.uint64(0xFFFFFFFF80000000)
LOWER = np.uint64(0x7FFFFFFF)


def mt19937_64(seed, count):
    """std::mt19937_64 (Matsumoto & Nishimura's MT19937-64) outputs, the twist vectorized."""
    n, m = 312, 156
    mt = np.zeros(n, np.uint64)
    mt[0] = seed
    with np.errstate(over="ignore"):
        for i in range(1, n):
            p = int(mt[i - 1])
            mt[i] = (6364136223846793005 * (p ^ (p >> 62)) + i) & 0xFFFFFFFFFFFFFFFF

    def twist(mt):
        new = mt.copy()
        one, zero = np.uint64(1), np.uint64(0)

        def mix(i, nxt, far):
            x = (new[i] & UPPER) | (nxt & LOWER)
            return far ^ (x >> one) ^ np.where((x & one) != zero, MT_A, zero)

        i = np.arange(0, n - m)
        new[i] = mix(i, mt[i + 1], mt[i + m])
        i = np.arange(n - m, n - 1)
        new[i] = mix(i, mt[i + 1], new[i + m - n])
        new[n - 1] = mix(n - 1, new[0], new[m - 1])
        return new

    out = []
    left = count
    while left > 0:
        mt = twist(mt)
        y = mt.copy()
        y ^= (y >> np.uint64(29)) & np.uint64(0x5555555555555555)
        y ^= (y << np.uint64(17)) & np.uint64(0x71D67FFFEDA60000)
        y ^= (y << np.uint64(37)) & np.uint64(0xFFF7EEE000000000)
        y ^= y >> np.uint64(43)
        out.append(y[:left])
        left -= y[:left].size
    return np.concatenate(out)


def uniform_floats(seed, shape):
    """libstdc++'s uniform_real_distribution<float>(0, 1) on mt19937_64: generate_canonical with
    one 64-bit draw, float(draw) / 2^64, values that round to 1 replaced by the float below 1."""
    draws = mt19937_64(seed, int(np.prod(shape)))
    u = draws.astype(np.float32) / np.float32(2.0 ** 64)
    u[u >= 1] = np.nextafter(np.float32(1), np.float32(0))
    return u.reshape(shape)


def test_mt19937_64_reference_values():
    # The C++ standard ([rand.predef]): the 10000th output of a default-constructed
    # mt19937_64 (seed 5489) is 9981545732273789042.
    assert int(mt19937_64(5489, 10000)[-1]) == 9981545732273789042


@pytest.mark.parametrize("seed", [0, 17])
def test_smoke_input_outputs_and_stats(tmp_path, seed):
    out = tmp_path / "smoke"
    lowbit("smoke", MODEL, "--seed", seed, "--runs", 1, "--warmup", 0, "--out", out,
           "--save-outputs")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == seed and summary["input_source"] == "random"
    x = uniform_floats(seed, (1, 3, 320, 320))
    want = ort_session(MODEL).run(None, {"images": x})
    assert len(summary["outputs"]) == len(want)
    for k, (w, st) in enumerate(zip(want, summary["outputs"])):
        y = np.load(out / "outputs" / f"{k}.npy")
        # Outputs on the regenerated input: lowbit's engine equals ORT up to float rounding.
        scale = float(np.abs(w).max())
        assert float(np.abs(y - w).max()) <= 1e-4 * scale, k
        # Statistics of the saved output, in numpy (double accumulation, population std).
        y64 = y.astype(np.float64)
        assert st["shape"] == list(y.shape) and st["dtype"] == "float32"
        assert st["nan_count"] == int(np.isnan(y).sum()) and st["inf_count"] == 0
        assert st["min"] == pytest.approx(float(y64.min()), rel=1e-12, abs=0)
        assert st["max"] == pytest.approx(float(y64.max()), rel=1e-12, abs=0)
        assert st["mean"] == pytest.approx(float(y64.mean()), rel=1e-9, abs=1e-12)
        assert st["std"] == pytest.approx(float(y64.std()), rel=1e-6, abs=1e-12)
    lat = summary["latency"]
    assert lat["runs"] == 1 and lat["min_ms"] == lat["mean_ms"] == summary["runtime_ms"]


# ---------------------------------------------------------------------------------------------
# quantize --explain

@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_explain_text_is_pinned(mode):
    """The placement account for the bundled model (no MODEL: the default), placement only.
    A change of placement or of its wording shows up here as a diff; after a deliberate change,
    rerun with LOWBIT_UPDATE_GOLDEN=1 and review the diff of the golden."""
    text = lowbit("quantize", "--mode", mode, "--explain").stdout
    path = os.path.join(GOLDEN, f"explain-bundled-{mode}.txt")
    if os.environ.get("LOWBIT_UPDATE_GOLDEN") == "1":
        with open(path, "w") as f:
            f.write(text)
    with open(path) as f:
        want = f.read()
    assert text == want, f"lowbit quantize --mode {mode} --explain differs from {path}"
