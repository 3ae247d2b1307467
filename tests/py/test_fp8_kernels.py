"""FP8 (E4M3FN) Q/DQ convs on bf16 kernels (issue 12 item 2): the qconv_fp8 step against the
float simulation (LOWBIT_LOWP_KERNELS=0) and against ONNX Runtime, every fused pattern, the
fallback reasons, and mAP on the bundled model.

Tolerances: every E4M3 value is exact in bfloat16 and the product of two is exact in float32,
so the step's float32 sums of code products differ from the simulation's float32 conv of the
dequantized values by summation order (and one scaling) only. A quantized output may then
differ by one E4M3 step where the value lies on a rounding boundary (a tie), and nowhere by
more; float outputs agree to float32 accumulation error.
"""
import json
import os
import subprocess

import lowp_helpers
import ml_dtypes
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from lowp_helpers import BIN, kernels, lowbit, run_lowbit
from onnx import TensorProto, helper, numpy_helper

SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ASSETS = os.path.join(SRC, "assets")
BUNDLED = os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx")
E4M3 = TensorProto.FLOAT8E4M3FN
F8 = ml_dtypes.float8_e4m3fn


def e4m3_ordinal(v, scale):
    """E4M3 values v / scale as ordered integers (neighbouring values differ by 1)."""
    c = (np.asarray(v, np.float32) / np.float32(scale)).astype(F8).view(np.uint8).astype(np.int32)
    return np.where(c & 0x80, -(c & 0x7F), c & 0x7F)


def assert_within_one_step(fast, sim, scale, what=""):
    a, b = e4m3_ordinal(fast, scale), e4m3_ordinal(sim, scale)
    # The values really are on the E4M3 grid of that scale.
    assert np.array_equal((a != 0), (np.asarray(fast) != 0)), what
    d = np.abs(a - b)
    assert d.max() <= 1, f"{what}: E4M3 codes differ by {d.max()} steps"
    assert (d > 0).mean() <= 0.01, f"{what}: {(d > 0).mean():.4f} of codes differ"


# ---- synthetic FP8 Q/DQ conv patterns ------------------------------------------------------

def pattern_model(path, c=16, m=16, hw=12, k=3, stride=1, group=1, bias=True, silu=True,
                  residual=None, out_q=True, act_dtype=E4M3, w_dtype=E4M3, w_axis=0,
                  y_scale=0.03, seed=0):
    """lowp_helpers.conv_pattern at opset 19 with E4M3 (or int8) weight codes per output
    channel (w_axis 0) or per tensor (-1); x quantized as act_dtype, R and y as E4M3."""
    def weights(w, nodes, inits):
        amax = np.abs(w).reshape(m, -1).max(axis=1) if w_axis == 0 else np.abs(w).max()
        if w_dtype == E4M3:
            ws = (amax / 448).astype(np.float32)
            shape = (m, 1, 1, 1) if w_axis == 0 else ()
            codes = (w / ws.reshape(shape)).astype(F8).view(np.uint8)
        else:
            ws = (amax / 127).astype(np.float32)
            shape = (m, 1, 1, 1) if w_axis == 0 else ()
            codes = np.clip(np.rint(w / ws.reshape(shape)), -127, 127).astype(np.int8)
        inits.append(helper.make_tensor("w_q", w_dtype, list(w.shape), codes.tobytes(), raw=True))
        inits.append(numpy_helper.from_array(np.atleast_1d(ws) if w_axis == 0 else
                                             np.array(ws, np.float32), "w_s"))
        n_zp = m if w_axis == 0 else 1
        inits.append(helper.make_tensor("w_z", w_dtype, [m] if w_axis == 0 else [],
                                        bytes(n_zp), raw=True))
        nodes.append(helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"],
                                      axis=w_axis))
    return lowp_helpers.conv_pattern(
        path, weights, c, m, hw, k, stride, group, bias, silu, residual, out_q, x_scale=0.01,
        r_scale=0.008, y_scale=y_scale, x_dtype=act_dtype, q_dtype=E4M3, opset=19, ir_version=9,
        seed=seed)


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
    "saturating": {"y_scale": 0.002},  # many outputs beyond 448 steps: saturate to +-448
    "tall_chunked": {"hw": 80, "c": 32, "m": 32},
}


@pytest.mark.parametrize("name", sorted(PATTERNS))
@pytest.mark.parametrize("threads", [1, 2])
def test_pattern_fp8_step_matches_simulation(tmp_path, name, threads):
    opts = PATTERNS[name]
    path = pattern_model(tmp_path / f"{name}.onnx", **opts)
    rep = kernels(path)
    assert rep["fp8_convs"] == 1 and rep["int8_convs"] == 0 and rep["qdq_convs"] == 1, rep
    assert rep["steps"].get("qconv_fp8") == 1, rep
    assert rep["dq_skipped"] == (2 if opts.get("residual") == "q" else 1), rep
    c, hw = opts.get("c", 16), opts.get("hw", 12)
    x = np.random.default_rng(3).normal(0, 1.0, (1, c, hw, hw)).astype(np.float32)
    fast = run_lowbit(path, [x], tmp_path, True, threads)
    sim = run_lowbit(path, [x], tmp_path, False, threads)
    assert fast.shape == sim.shape
    if opts.get("out_q", True):
        ys = opts.get("y_scale", 0.03)
        assert_within_one_step(fast, sim, ys, name)
        if name == "saturating":
            assert (np.abs(sim) == np.float32(448 * ys)).mean() > 0.05
    else:
        diff = np.abs(fast.astype(np.float64) - sim.astype(np.float64))
        assert diff.max() <= 1e-4 * max(1.0, float(np.abs(sim).max())), diff.max()


FALLBACKS = {
    "e5m2": ({"act_dtype": TensorProto.FLOAT8E5M2}, "only float8e4m3fn has an FP8 kernel"),
    "int8_weights": ({"w_dtype": TensorProto.INT8},
                     "weights are not a DequantizeLinear of constant float8e4m3fn codes"),
}


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_fallback_reasons(tmp_path, name):
    opts, reason = FALLBACKS[name]
    path = pattern_model(tmp_path / f"{name}.onnx", **opts)
    rep = kernels(path)
    assert rep["fp8_convs"] == 0 and rep["qdq_convs"] == 1, rep
    assert len(rep["fallbacks"]) == 1 and reason in rep["fallbacks"][0]["reason"], rep
    x = np.random.default_rng(4).normal(0, 1.0, (1, 16, 12, 12)).astype(np.float32)
    fast = run_lowbit(path, [x], tmp_path, True)
    sim = run_lowbit(path, [x], tmp_path, False)
    np.testing.assert_allclose(fast, sim, rtol=1e-5, atol=1e-5)


def test_no_bf16_cpu_is_a_fallback_reason(tmp_path):
    """oneDNN limited to AVX-512 VNNI (no BF16 instructions): the step is refused and says so."""
    path = pattern_model(tmp_path / "m.onnx")
    rep = kernels(path, env_extra={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"})
    assert rep["fp8_convs"] == 0 and rep["steps"].get("qconv_fp8") is None, rep
    assert "CPU lacks AVX512-BF16/AMX" in rep["fallbacks"][0]["reason"], rep


def test_switch_off_is_a_fallback_reason(tmp_path):
    path = pattern_model(tmp_path / "m.onnx")
    rep = kernels(path, lowp=False)
    assert rep["fp8_convs"] == 0 and rep["steps"].get("qconv_fp8") is None
    assert "low-precision kernels off" in rep["fallbacks"][0]["reason"]


def test_profile_summary_counts_fp8(tmp_path):
    path = pattern_model(tmp_path / "m.onnx")
    env = dict(os.environ, LOWBIT_PROFILE="1")
    r = subprocess.run([BIN, "smoke", str(path), "--runs", "1", "--warmup", "0"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert "qconv_fp8 1" in r.stderr and "Q/DQ convs 1: 0 int8, 1 fp8, 0 fell back" in r.stderr


# ---- the bundled model ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundled_fp8(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundled_fp8")
    lst = d / "calib.txt"
    with open(os.path.join(ASSETS, "calib", "calib100.txt")) as f:
        names = [ln.strip() for ln in f if ln.strip()][:8]
    calib_dir = os.path.join(ASSETS, "calib")
    lst.write_text("\n".join(n if os.path.isabs(n) else os.path.join(calib_dir, n)
                             for n in names) + "\n")
    lowbit("calib", "--list", lst, "--imgsz", 320, "--out", d / "calib.npy")
    q = d / "fp8.onnx"
    lowbit("quantize", BUNDLED, "--mode", "fp8", "--calib", d / "calib.npy", "--out", q)
    return {"dir": d, "model": q, "x": np.load(d / "calib.npy")[:1]}


def conv_chains(model):
    """FP8 Q/DQ convs whose result ends in a QuantizeLinear: (conv, inputs, output, y scale)."""
    prod = {o: n for n in model.graph.node for o in n.output}
    cons = {}
    for n in model.graph.node:
        for i in n.input:
            cons.setdefault(i, []).append(n)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}

    def quantized_from(t):
        dq = prod.get(t)
        q = prod.get(dq.input[0]) if dq is not None and dq.op_type == "DequantizeLinear" else None
        return q.input[0] if q is not None and q.op_type == "QuantizeLinear" else None

    for conv in model.graph.node:
        if conv.op_type != "Conv" or quantized_from(conv.input[0]) is None:
            continue
        inputs, t = [quantized_from(conv.input[0])], conv.output[0]
        readers = cons.get(t, [])
        if sorted(n.op_type for n in readers) == ["Mul", "Sigmoid"]:
            t = next(n for n in readers if n.op_type == "Mul").output[0]
        if len(cons.get(t, [])) == 1 and cons[t][0].op_type == "Add":
            add = cons[t][0]
            r = add.input[1] if add.input[0] == t else add.input[0]
            inputs.append(quantized_from(r) or r)
            t = add.output[0]
        if len(cons.get(t, [])) == 1 and cons[t][0].op_type == "QuantizeLinear":
            q = cons[t][0]
            yield conv.name, inputs, q.output[0], float(inits[q.input[1]])


def test_bundled_layer_by_layer_within_one_step(bundled_fp8, tmp_path):
    """Each FP8 conv step, given the simulation's inputs, equals the simulation's E4M3 codes up
    to one step where a rounding ties."""
    model = onnx.load(str(bundled_fp8["model"]))
    chains = list(conv_chains(model))
    assert len(chains) >= 20
    picked = chains[:: max(1, len(chains) // 8)]
    wanted = sorted({t for _, ins, _, _ in picked for t in ins})
    m2 = onnx.load(str(bundled_fp8["model"]))
    m2.graph.output.extend([helper.make_empty_tensor_value_info(t) for t in wanted])
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(m2.SerializeToString(), so, providers=["CPUExecutionProvider"])
    vals = dict(zip([o.name for o in s.get_outputs()],
                    s.run(None, {s.get_inputs()[0].name: bundled_fp8["x"]})))
    for k, (conv, ins, out, ys) in enumerate(picked):
        sub = tmp_path / f"layer{k}.onnx"
        onnx.utils.extract_model(str(bundled_fp8["model"]), str(sub), ins, [out])
        # The extracted model ends in the FP8 codes: end it in their DequantizeLinear instead
        # so that smoke saves float values (scale ys, zero point 0).
        sm = onnx.load(str(sub))
        sm.graph.initializer.extend([helper.make_tensor("ys__", TensorProto.FLOAT, [], [ys])])
        sm.graph.node.append(helper.make_node("DequantizeLinear", [out, "ys__"], ["y__"]))
        del sm.graph.output[:]
        sm.graph.output.append(helper.make_empty_tensor_value_info("y__"))
        onnx.save(sm, str(sub))
        rep = kernels(sub)
        assert rep["fp8_convs"] == 1, (conv, rep)
        xs = [vals[t] for t in ins]
        fast = run_lowbit(sub, xs, tmp_path, True, tag=f"l{k}")
        sim = run_lowbit(sub, xs, tmp_path, False, tag=f"l{k}")
        assert_within_one_step(fast, sim, ys, conv)


def test_bundled_end_to_end_within_ort_spread(bundled_fp8, tmp_path):
    """lowbit's FP8 kernels vs ONNX Runtime's simulation (no optimizations) differ no more than
    ONNX Runtime's own optimized and unoptimized runs of the same file, as for int8.

    On an FP8 graph ORT's pair is bimodal: on some images its optimized run is (nearly) bit
    identical, on the others one E4M3 tie flips and propagates, giving 0.06-0.075 mean |.|
    (8 calibration images of the bundled model). The spread is measured on the images where
    ORT's pair differs (at least 3 of 8), and lowbit's mean and max difference on those must
    stay within ORT's plus 10%."""
    path = bundled_fp8["model"]
    xs = np.load(bundled_fp8["dir"] / "calib.npy")[:8]
    rep = kernels(path)
    assert rep["fp8_convs"] >= 0.8 * rep["qdq_convs"], rep

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
        if np.abs(opt - ref).mean() < 1e-6:
            continue
        ours = run_lowbit(path, [x], tmp_path, True, tag=f"e{i}").astype(np.float64)
        sim = run_lowbit(path, [x], tmp_path, False, tag=f"e{i}").astype(np.float64)
        changed |= not np.array_equal(ours, sim)
        spread.append(np.abs(opt - ref))
        ours_d.append(np.abs(ours - ref))
    assert len(spread) >= 3, f"ORT's optimized run differs on {len(spread)} of 8 images only"
    ort_mean = np.mean([d.mean() for d in spread])
    our_mean = np.mean([d.mean() for d in ours_d])
    ort_max = max(d.max() for d in spread)
    our_max = max(d.max() for d in ours_d)
    print(f"vs ORT unoptimized, {len(spread)} images: ORT optimized mean {ort_mean:.4f} max "
          f"{ort_max:.3f}; lowbit fp8 mean {our_mean:.4f} max {our_max:.3f}")
    assert changed
    assert our_mean <= 1.1 * ort_mean, (our_mean, ort_mean)
    assert our_max <= 1.1 * ort_max, (our_max, ort_max)


def test_bundled_map_matches_simulation(bundled_fp8, tmp_path):
    """mAP50-95 on the bundled val set (first 100 images) within 0.01 of the simulation's;
    metrics.json names the kernels.

    Float summation order alone moves this mAP by about 0.005: gating Winograd off for 3x3
    convs under 40 channels (which changes the calibration's float convs, so the fp8 scales,
    and the simulation's float convs) moved the simulation 0.7120 -> 0.7072 and the kernels
    0.7107 -> 0.7131, a gap of 0.006 with no kernel wrong, so the former 0.002 bound failed
    on noise. 0.01 still catches a wrong kernel: an output scale 5% off in fp8conv.cpp's
    epilogue gave a gap of 0.018, 10% off 0.087. (2% off gave 0.001, under either bound; the
    layer-by-layer and end-to-end tests above catch that one: 22% of a conv's codes differ.)"""
    maps = {}
    for lowp in (True, False):
        out = tmp_path / f"m{int(lowp)}.json"
        lowbit("eval", bundled_fp8["model"], "--max-images", 100, "--warmup-runs", 0, "--quiet",
               "--out", out, lowp=lowp)
        j = json.loads(out.read_text())
        maps[lowp] = j["metrics"]["mAP_50_95"]
        if lowp:
            k = j["kernels"]
            assert k["steps"]["qconv_fp8"] == k["fp8_convs"] > 0
            assert k["qdq_convs"] == k["fp8_convs"] + len(k["fallbacks"])
    print(f"mAP50-95 fp8 kernels {maps[True]:.4f}, simulation {maps[False]:.4f}")
    assert abs(maps[True] - maps[False]) <= 0.01, maps
