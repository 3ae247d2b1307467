"""Low-precision kernels for Q/DQ graphs (issue 12): the int8 Q/DQ conv step against the float
simulation (LOWBIT_LOWP_KERNELS=0) and against ONNX Runtime, every fused pattern, every
fallback reason this CPU can show, and the kernel report in `info --json` and eval's
metrics.json.

Tolerances: the int8 step sums x_q * w_q exactly in int32 and scales once; the simulation sums
the dequantized float products in float32. The two differ by float rounding only, so a
quantized output may differ by one code where the value lies on a rounding boundary (a tie),
and nowhere by more.
"""
import json
import os
import subprocess
from collections import defaultdict

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from lowp_helpers import BIN, conv_pattern, kernels, lowbit, run_lowbit
from onnx import TensorProto, helper, numpy_helper

SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ASSETS = os.path.join(SRC, "assets")
BUNDLED = os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx")


# ---- synthetic Q/DQ conv patterns ----------------------------------------------------------

def pattern_model(path, c=16, m=16, hw=12, k=3, stride=1, group=1, bias=True, silu=True,
                  residual=None, out_q=True, act_dtype=TensorProto.INT8, act_zp=0,
                  w_axis=0, w_quant=True, opset=13, seed=0):
    """lowp_helpers.conv_pattern with int8 weight codes, per output channel (w_axis 0) or per
    tensor (-1), or float weights (w_quant False); x quantized as act_dtype with act_zp."""
    def weights(w, nodes, inits):
        if not w_quant:
            inits.append(numpy_helper.from_array(w, "w"))
            return
        amax = np.abs(w).reshape(m, -1).max(axis=1) if w_axis == 0 else np.abs(w).max()
        ws = (amax / 127).astype(np.float32)
        shape = (m, 1, 1, 1) if w_axis == 0 else ()
        wq = np.clip(np.rint(w / ws.reshape(shape)), -127, 127).astype(np.int8)
        inits.append(numpy_helper.from_array(wq, "w_q"))
        inits.append(numpy_helper.from_array(np.atleast_1d(ws) if w_axis == 0 else
                                             np.array(ws, np.float32), "w_s"))
        zshape = [m] if w_axis == 0 else []
        inits.append(helper.make_tensor("w_z", TensorProto.INT8, zshape, [0] * (m if w_axis == 0
                                                                                  else 1)))
        nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"],
                                      axis=w_axis))
    return conv_pattern(path, weights, c, m, hw, k, stride, group, bias, silu, residual, out_q,
                        x_dtype=act_dtype, x_zp=act_zp, opset=opset,
                        ir_version=8 if opset < 19 else 9, seed=seed)


PATTERNS = {
    "conv_silu_q": {},
    "conv_q": {"silu": False},
    "conv_nobias_f32out": {"bias": False, "out_q": False},
    "silu_f32out": {"out_q": False},
    "residual_q_in_q_out": {"residual": "q"},
    "residual_float": {"residual": "float"},
    "residual_q_f32out": {"residual": "q", "out_q": False},
    "pointwise": {"k": 1, "c": 32, "m": 24},
    "stride2": {"stride": 2, "hw": 13},
    "depthwise": {"group": 16},
    "grouped": {"group": 4},
    "per_tensor_weights": {"w_axis": -1},
}


@pytest.mark.parametrize("name", sorted(PATTERNS))
@pytest.mark.parametrize("threads", [1, 2])
def test_pattern_int8_step_matches_simulation(tmp_path, name, threads):
    opts = PATTERNS[name]
    path = pattern_model(tmp_path / f"{name}.onnx", **opts)
    rep = kernels(path)
    assert rep["int8_convs"] == 1 and rep["qdq_convs"] == 1, rep
    assert rep["steps"].get("qconv_int8") == 1, rep
    # The DQ of x (and of R when read as codes) never runs.
    assert rep["dq_skipped"] == (2 if opts.get("residual") == "q" else 1), rep
    x = np.random.default_rng(3).normal(0, 1.0, (1, opts.get("c", 16), opts.get("hw", 12),
                                                 opts.get("hw", 12))).astype(np.float32)
    fast = run_lowbit(path, [x], tmp_path, True, threads)
    sim = run_lowbit(path, [x], tmp_path, False, threads)
    assert fast.shape == sim.shape
    diff = np.abs(fast.astype(np.float64) - sim.astype(np.float64))
    if opts.get("out_q", True):
        step = 0.03
        assert diff.max() <= step * 1.0001, f"{diff.max()} > one step {step}"
        assert (diff > 0).mean() <= 0.01, f"{(diff > 0).mean():.4f} of codes differ"
    else:
        assert diff.max() <= 1e-4 * max(1.0, float(np.abs(sim).max())), diff.max()


# Small convs (20-40 us modelled: fewer row chunks than threads) get one chunk per thread
# (qconv.cpp plan_chunks): on maps of a few rows, ranges of output channels, each with its slice
# of the weights, output scales and bias (120 and 344 channels: the last range is not a multiple
# of 16); elsewhere row chunks. name -> (pattern, channel chunks expected).
SMALL_CONVS = {
    "silu_residual_q": ({"c": 120, "m": 120, "hw": 5, "residual": "q"}, True),
    "residual_float_f32out": (
        {"c": 120, "m": 120, "hw": 5, "residual": "float", "out_q": False}, True),
    "nobias_f32out": ({"c": 120, "m": 120, "hw": 5, "bias": False, "out_q": False}, True),
    "pointwise": ({"k": 1, "c": 320, "m": 344, "hw": 5}, True),
    "stride2": ({"c": 120, "m": 120, "hw": 9, "stride": 2}, True),
    "rows_8": ({"c": 72, "m": 72, "hw": 8, "residual": "q"}, False),
    # Row chunks of a padded 3x3 conv: on CPUs without AMX the first chunk (padding on top
    # only) runs on another exact int8 kernel than the others (the profile then says "some row
    # chunks on ..."); its rows must still be one thread's bits.
    "rows_40_padded": ({"c": 192, "m": 192, "hw": 40, "residual": "q"}, False),
}


def qconv_steps(path, threads):
    """The QConv step lines of the LOWBIT_PROFILE table of one run."""
    r = lowbit("smoke", path, "--runs", 1, "--warmup", 0, "--threads", threads,
               env_extra={"LOWBIT_PROFILE": "1"})
    return [ln for ln in r.stderr.splitlines() if "QConv int8" in ln]


@pytest.mark.parametrize("name", sorted(SMALL_CONVS))
def test_small_conv_chunks_match_one_thread(tmp_path, name):
    """At 2 and 3 threads the chunks give one thread's output bit for bit (a channel chunk
    given another chunk's scales or bias would not), and the simulation's within one step."""
    opts, by_channels = SMALL_CONVS[name]
    path = pattern_model(tmp_path / f"{name}.onnx", seed=5, **opts)
    x = np.random.default_rng(4).normal(0, 1.0, (1, opts["c"], opts["hw"], opts["hw"])).astype(
        np.float32)
    one = run_lowbit(path, [x], tmp_path, True, 1)
    assert not any("channel chunks" in ln for ln in qconv_steps(path, 1))
    for threads in (2, 3):
        steps = qconv_steps(path, threads)
        assert len(steps) == 1, steps
        assert (f"x{threads} channel chunks" in steps[0]) == by_channels, steps
        many = run_lowbit(path, [x], tmp_path, True, threads)
        assert many.dtype == one.dtype and np.array_equal(many, one), (
            threads, np.abs(many.astype(np.float64) - one).max())
    sim = run_lowbit(path, [x], tmp_path, False, 1)
    diff = np.abs(one.astype(np.float64) - sim.astype(np.float64))
    if opts.get("out_q", True):
        assert diff.max() <= 0.03 * 1.0001, diff.max()
    else:
        assert diff.max() <= 1e-4 * max(1.0, float(np.abs(sim).max())), diff.max()


FALLBACKS = {
    # FP8 activations with int8 weights (an all-FP8 conv runs on qconv_fp8: test_fp8_kernels.py)
    "fp8": ({"act_dtype": TensorProto.FLOAT8E4M3FN, "opset": 19}, "constant float8e4m3fn codes"),
    "uint8_asymmetric": ({"act_dtype": TensorProto.UINT8, "act_zp": 128}, "only symmetric int8"),
    "int8_zero_point": ({"act_zp": 3}, "activation zero point is not 0"),
    "float_weights": ({"w_quant": False}, "weights are not a DequantizeLinear"),
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_fallback_reasons(tmp_path, name):
    opts, reason = FALLBACKS[name]
    path = pattern_model(tmp_path / f"{name}.onnx", **opts)
    rep = kernels(path)
    assert rep["int8_convs"] == 0 and rep["qdq_convs"] == 1, rep
    assert len(rep["fallbacks"]) == 1 and reason in rep["fallbacks"][0]["reason"], rep
    assert rep["fallbacks"][0]["node"] != ""
    # The fallback runs today's simulation: same result with the switch off.
    x = np.random.default_rng(4).normal(0, 1.0, (1, 16, 12, 12)).astype(np.float32)
    fast = run_lowbit(path, [x], tmp_path, True)
    sim = run_lowbit(path, [x], tmp_path, False)
    np.testing.assert_allclose(fast, sim, rtol=1e-5, atol=1e-5)


def test_switch_off_is_a_fallback_reason(tmp_path):
    path = pattern_model(tmp_path / "m.onnx")
    rep = kernels(path, lowp=False)
    assert rep["int8_convs"] == 0 and rep["steps"].get("qconv_int8") is None
    assert "low-precision kernels off" in rep["fallbacks"][0]["reason"]
    assert rep["fallback_reasons"] == {rep["fallbacks"][0]["reason"]: 1}


def test_profile_summary_names_kernels(tmp_path):
    path = pattern_model(tmp_path / "m.onnx")
    env = dict(os.environ, LOWBIT_PROFILE="1")
    r = subprocess.run([BIN, "smoke", str(path), "--runs", "1", "--warmup", "0"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "qconv_int8 1" in r.stderr and "Q/DQ convs 1: 1 int8, 0 fell back" in r.stderr


# ---- the bundled model ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundled_int8(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundled")
    lst = d / "calib.txt"
    with open(os.path.join(ASSETS, "calib", "calib100.txt")) as f:
        names = [ln.strip() for ln in f if ln.strip()][:8]
    calib_dir = os.path.join(ASSETS, "calib")
    lst.write_text("\n".join(n if os.path.isabs(n) else os.path.join(calib_dir, n)
                             for n in names) + "\n")
    lowbit("calib", "--list", lst, "--imgsz", 320, "--out", d / "calib.npy")
    q = d / "int8.onnx"
    lowbit("quantize", BUNDLED, "--mode", "int8", "--calib", d / "calib.npy", "--out", q)
    x = np.load(d / "calib.npy")[:1]
    return {"dir": d, "model": q, "x": x}


def test_bundled_threads_match_one_thread(bundled_int8, tmp_path):
    """The bundled model's int8 convs give one thread's outputs bit for bit at 2 threads."""
    x = bundled_int8["x"]
    one = run_lowbit(bundled_int8["model"], [x], tmp_path, True, 1)
    two = run_lowbit(bundled_int8["model"], [x], tmp_path, True, 2)
    assert np.array_equal(one, two), np.abs(one - two).max()


def test_bundled_direct_kernel_matches_onednn(bundled_int8, tmp_path):
    """The narrow int8 convs on the direct VNNI kernel (qconv_direct.h) and the depthwise ones
    on the direct depthwise kernel (qconv_dw.h) give the outputs of oneDNN's int8 kernels
    (LOWBIT_QCONV_DIRECT=0) bit for bit, at 1 and 2 threads."""
    model, x = bundled_int8["model"], bundled_int8["x"]
    np.save(tmp_path / "x.npy", x)
    steps = lowbit("smoke", model, "--input", tmp_path / "x.npy", "--runs", 1, "--warmup", 0,
                   env_extra={"LOWBIT_PROFILE": "1"}).stderr
    if "AVX-512 VNNI" not in lowbit("--version").stdout.split("compiled for")[1].split("\n")[0]:
        assert "direct:" not in steps
        pytest.skip("built without AVX-512 VNNI")
    assert "direct:avx512_vnni" in steps
    assert "dw [direct_dw:avx512]" in steps
    for threads in (1, 2):
        outs = {}
        for direct in ("0", "1"):
            out = tmp_path / f"d{direct}_{threads}"
            lowbit("smoke", model, "--input", tmp_path / "x.npy", "--out", out, "--save-outputs",
                   "--runs", 1, "--warmup", 0, "--threads", threads,
                   env_extra={"LOWBIT_QCONV_DIRECT": direct})
            outs[direct] = (out / "outputs" / "0.npy").read_bytes()
        assert outs["0"] == outs["1"], threads


def conv_chains(model):
    """Q/DQ convs whose result ends in a QuantizeLinear: (conv, float inputs, int8 output)."""
    prod = {o: n for n in model.graph.node for o in n.output}
    cons = defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            cons[i].append(n)

    def quantized_from(t):
        dq = prod.get(t)
        q = prod.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        return q.input[0] if q is not None and q.op_type == "QuantizeLinear" else None

    for conv in model.graph.node:
        if conv.op_type != "Conv":
            continue
        x = quantized_from(conv.input[0])
        if x is None:
            continue
        inputs, t = [x], conv.output[0]
        readers = cons[t]
        if sorted(n.op_type for n in readers) == ["Mul", "Sigmoid"]:
            t = next(n for n in readers if n.op_type == "Mul").output[0]
        if len(cons[t]) == 1 and cons[t][0].op_type == "Add":
            add = cons[t][0]
            r = add.input[1] if add.input[0] == t else add.input[0]
            inputs.append(quantized_from(r) or r)
            t = add.output[0]
        if len(cons[t]) == 1 and cons[t][0].op_type == "QuantizeLinear":
            yield conv.name, inputs, cons[t][0].output[0]


def test_bundled_layer_by_layer_within_one_step(bundled_int8, tmp_path):
    """Each int8 conv step, given the simulation's inputs, equals the simulation's int8 codes
    up to one code where a requantization ties."""
    model = onnx.load(str(bundled_int8["model"]))
    chains = list(conv_chains(model))
    assert len(chains) >= 20
    picked = chains[:: max(1, len(chains) // 8)]
    # The simulation's tensors: ONNX Runtime, no optimizations.
    wanted = sorted({t for _, ins, _ in picked for t in ins})
    m2 = onnx.load(str(bundled_int8["model"]))
    m2.graph.output.extend([helper.make_empty_tensor_value_info(t) for t in wanted])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m2.SerializeToString(), so, providers=["CPUExecutionProvider"])
    vals = dict(zip([o.name for o in s.get_outputs()],
                    s.run(None, {s.get_inputs()[0].name: bundled_int8["x"]})))
    checked = 0
    for k, (conv, ins, out) in enumerate(picked):
        sub = tmp_path / f"layer{k}.onnx"
        onnx.utils.extract_model(str(bundled_int8["model"]), str(sub), ins, [out])
        rep = kernels(sub)
        assert rep["int8_convs"] == 1, (conv, rep)
        xs = [vals[t] for t in ins]
        fast = run_lowbit(sub, xs, tmp_path, True, tag=f"l{k}").astype(np.int32)
        sim = run_lowbit(sub, xs, tmp_path, False, tag=f"l{k}").astype(np.int32)
        d = np.abs(fast - sim)
        assert d.max() <= 1, f"{conv}: codes differ by {d.max()}"
        assert (d > 0).mean() <= 0.01, f"{conv}: {(d > 0).mean():.4f} of codes differ"
        checked += 1
    assert checked == len(picked)


def test_bundled_end_to_end_within_ort_spread(bundled_int8, tmp_path):
    """lowbit's int8 kernels vs ONNX Runtime's simulation (no optimizations) differ no more
    than ONNX Runtime's own optimized (int8 kernels) and unoptimized runs of the same file.

    Both differences are dominated by requantization codes that flip on a tie and propagate,
    so they are of one size. Their bulk is steady: over the 4 images (4 x 155400 outputs) the
    mean |.| is 0.060-0.062 for ORT's pair and the 99.9th percentile 0.72-0.73 (lowbit 0.048
    and 0.70). Their maximum is not: it is one element where a flipped code landed, and moved
    1.47 -> 1.53 with ORT's own runs and 1.63 -> 2.11 for lowbit when only the float summation
    order of four small float convs changed (Winograd off below 40 channels); over 24 other
    images the maxima were ORT 2.18, lowbit 2.11 / 2.30 with those two orders. So the mean and
    the 99.9th percentile must stay within ORT's plus 10%, and the max within 2x ORT's, which
    still catches a blow-up. Checked by breaking qconv.cpp's epilogue: every requantized code
    one step high gave mean 0.45, p99.9 3.9, max 10.0; an output scale 2% off gave mean 0.23,
    p99.9 2.2, max 4.6 (ORT's pair: 0.062, 0.73, 1.47), each failing all three bounds."""
    path = bundled_int8["model"]
    xs = np.load(bundled_int8["dir"] / "calib.npy")[:4]
    rep = kernels(path)
    assert rep["int8_convs"] >= 0.8 * rep["qdq_convs"], rep

    def session(level):
        so = ort.SessionOptions()
        so.graph_optimization_level = level
        so.intra_op_num_threads = 1
        return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

    ref_s = session(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    opt_s = session(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    name = ref_s.get_inputs()[0].name
    spread, ours_d, changed = [], [], False
    for i in range(len(xs)):
        x = xs[i:i + 1]
        ref = ref_s.run(None, {name: x})[0].astype(np.float64)
        opt = opt_s.run(None, {name: x})[0].astype(np.float64)
        ours = run_lowbit(path, [x], tmp_path, True, tag=f"e{i}").astype(np.float64)
        sim = run_lowbit(path, [x], tmp_path, False, tag=f"e{i}").astype(np.float64)
        changed |= not np.array_equal(ours, sim)
        spread.append(np.abs(opt - ref))
        ours_d.append(np.abs(ours - ref))
    spread, ours_d = np.concatenate(spread, axis=None), np.concatenate(ours_d, axis=None)
    ort_mean, our_mean = spread.mean(), ours_d.mean()
    ort_p, our_p = np.percentile(spread, 99.9), np.percentile(ours_d, 99.9)
    ort_max, our_max = spread.max(), ours_d.max()
    print(f"vs ORT unoptimized, 4 images: ORT optimized mean {ort_mean:.4f} p99.9 {ort_p:.3f} "
          f"max {ort_max:.3f}; lowbit int8 mean {our_mean:.4f} p99.9 {our_p:.3f} "
          f"max {our_max:.3f}")
    assert changed  # the int8 kernels really ran
    assert our_mean <= 1.1 * ort_mean, (our_mean, ort_mean)
    assert our_p <= 1.1 * ort_p, (our_p, ort_p)
    assert our_max <= 2.0 * ort_max, (our_max, ort_max)


def test_eval_metrics_name_the_kernels(bundled_int8, tmp_path):
    out = tmp_path / "metrics.json"
    lowbit("eval", bundled_int8["model"], "--max-images", 2, "--quiet", "--out", out)
    k = json.loads(out.read_text())["kernels"]
    assert k["steps"]["qconv_int8"] == k["int8_convs"] > 0
    # fallbacks lists the Q/DQ convs and the Q/DQ Concat/MaxPool moves that fell back.
    assert (k["qdq_convs"] + k["qdq_moves"] ==
            k["int8_convs"] + k["int8_moves"] + len(k["fallbacks"]))
    assert k["steps"]["qmove_int8"] == k["int8_moves"] > 0
    assert all(f["reason"] for f in k["fallbacks"])
