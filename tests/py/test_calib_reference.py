"""Calibration ranges checked against an independent reference.

lowbit's engine computes the activations it calibrates on, and lowbit's calibrators turn them into
thresholds; a test that compares lowbit's Q/DQ model with ONNX Runtime would stay green if both
were wrong (a scale 10x too large, a method silently ignored). Here neither is trusted:

- the activations come from ONNX Runtime (every observed tensor added as a graph output),
- each method's amax is computed in numpy from its published definition, written out below:
  max (largest |x|), percentile (the fine-histogram quantile documented in calib/histogram.h and
  calib/calibrators.h), entropy (TensorRT's KL-divergence search, IInt8EntropyCalibrator2 as
  NVIDIA describes it: P = bins [0, i) with the outliers added to bin i-1, Q = bins [0, i) merged
  into 128 levels and spread back over each level's non-empty bins, threshold = upper edge of the
  argmin bin) and mse (the candidate threshold with the least expected squared error on the
  target grid: INT8 round-half-even and clip to +-127 steps, or FP8 E4M3FN round-to-nearest-even
  saturating at 448),
- and lowbit's `--ranges` JSON is compared with them: max and percentile exactly up to the
  engines' float rounding (relative 1e-5, resp. one fine bin where a value sits on a bin edge),
  entropy and mse within one histogram bin of the KL/MSE histogram.

Subject: the bundled trained model (raw head), 8 of the bundled calibration images.
"""
import json
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
MODEL = os.path.join(SRC, "assets", "shapes-yolov10m-w0p1875-raw.onnx")
CALIB_LIST = os.path.join(SRC, "assets", "calib", "calib100.txt")
N_IMAGES = 8
FINE_LOG2 = 15     # TensorStats::kFineBins = 2^15 equal bins over [0, R), R a power of two
KL_BINS = 2048     # the KL/MSE histogram has at most 2048 bins
START_BIN = 128    # first candidate threshold bin (TensorRT)
LEVELS = 128       # INT8 levels of |x|


def lowbit(*args):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    assert r.returncode == 0, f"lowbit {' '.join(map(str, args))}:\n{r.stderr}\n{r.stdout}"
    return r


# ---------------------------------------------------------------------------------------------
# Reference definitions (numpy only).

def fine_histogram(a):
    """|x| values -> (counts over 2^15 equal bins on [0, R), R) with R the smallest power of two
    strictly above max|x| (calib/histogram.h)."""
    amax = float(a.max())
    r = 2.0 ** (np.floor(np.log2(amax)) + 1)
    idx = np.floor(a.astype(np.float64) * (2.0 ** FINE_LOG2 / r)).astype(np.int64)
    return np.bincount(idx, minlength=1 << FINE_LOG2), r


def coarse_histogram(fine, r):
    """The fine histogram's used part regrouped into at most 2048 equal bins (g fine bins each)."""
    used = int(np.nonzero(fine)[0][-1]) + 1
    g = -(-used // KL_BINS)
    nb = -(-used // g)
    h = np.zeros(nb * g, np.float64)
    h[:used] = fine[:used]
    return h.reshape(nb, g).sum(axis=1), r / (1 << FINE_LOG2) * g


def ref_max(a):
    return float(a.max())


def ref_percentile(a, p):
    fine, r = fine_histogram(a)
    k = int(np.searchsorted(np.cumsum(fine), p / 100.0 * a.size))
    return min((k + 1) * r / (1 << FINE_LOG2), float(a.max()))


def kl_divergences(hist):
    """KL(P || Q) for every candidate i in [128, nb], TensorRT's definition, one candidate at a
    time; inf where P > 0 and Q = 0."""
    nb = hist.size
    cand = np.arange(START_BIN, nb + 1)
    kl = np.empty(cand.size)
    outliers = hist.sum() - np.cumsum(hist)
    for j, i in enumerate(cand):
        h = hist[:i]
        p = h.copy()
        p[i - 1] += outliers[i - 1]
        level = (np.arange(i) * LEVELS) // i          # bin k of [0, i) -> level floor(128 k / i)
        nonempty = h > 0
        sums = np.bincount(level, weights=h, minlength=LEVELS)
        nz = np.bincount(level, weights=nonempty, minlength=LEVELS)
        per_bin = np.divide(sums, nz, out=np.zeros(LEVELS), where=nz > 0)
        q = np.where(nonempty, per_bin[level], 0.0)
        live = p > 0
        if np.any(live & (q == 0)):
            kl[j] = np.inf
            continue
        pn = p[live] / p.sum()
        qn = q[live] / q.sum()
        kl[j] = float(np.sum(pn * np.log(pn / qn)))
    return cand, kl


def ref_entropy(a):
    fine, r = fine_histogram(a)
    hist, w = coarse_histogram(fine, r)
    if hist.size <= START_BIN:
        return float(a.max()), w
    cand, kl = kl_divergences(hist)
    return min(cand[int(np.argmin(kl))] * w, float(a.max())), w


def round_e4m3(x):
    """Round non-negative float32 values to FP8 E4M3FN (3 mantissa bits, min normal 2^-6,
    subnormal step 2^-9), nearest-even, saturating at 448."""
    x = np.asarray(x, np.float64)
    e = np.floor(np.log2(np.maximum(x, 2.0 ** -6)))
    step = 2.0 ** (e - 3)
    return np.minimum(np.round(x / step) * step, 448.0)


def ref_mse(a, mode):
    fine, r = fine_histogram(a)
    hist, w = coarse_histogram(fine, r)
    amax = float(a.max())
    if hist.size <= START_BIN:
        return amax, w
    qmax = 127.0 if mode == "int8" else 448.0
    t = np.minimum(np.arange(START_BIN, hist.size + 1) * w, amax)[:, None]
    keep = hist > 0
    c = hist[keep]
    x = ((np.nonzero(keep)[0] + 0.5) * w).astype(np.float32)[None, :]
    inv_s = (qmax / t).astype(np.float32)
    s = (t / qmax).astype(np.float32)
    if mode == "int8":
        q = np.minimum(np.round(x * inv_s), 127.0) * s
    else:
        q = round_e4m3(x * inv_s).astype(np.float32) * s
    err = ((x.astype(np.float64) - q.astype(np.float64)) ** 2 * c).sum(axis=1)
    return float(t[int(np.argmin(err)), 0]), w


# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("calibref")
    lowbit("calib", "--list", CALIB_LIST, "--imgsz", 320, "--max-images", N_IMAGES, "--out",
           d / "calib.npy")
    x = np.load(d / "calib.npy")
    assert x.shape == (N_IMAGES, 3, 320, 320)
    return {"dir": d, "calib": d / "calib.npy", "x": x, "acts": {}}


def lowbit_ranges(data, method, mode="int8", extra=()):
    key = (method, mode, tuple(extra))
    path = data["dir"] / f"ranges-{method}-{mode}-{'-'.join(map(str, extra))}.json"
    if not path.exists():
        lowbit("quantize", MODEL, "--mode", mode, "--calib", data["calib"],
               "--calibration-method", method, *extra, "--ranges", path,
               "--out", data["dir"] / "q.onnx")
    r = json.loads(path.read_text())
    assert r["method"] == method and r["mode"] == mode and r["samples"] == N_IMAGES, key
    return r["tensors"]


def ort_abs_values(data, names):
    """|x| of every named tensor over the calibration images, from ONNX Runtime; members of one
    Concat group pooled (lowbit calibrates a group as one tensor)."""
    missing = [n for n in names if n not in data["acts"]]
    if missing:
        m = onnx.load(MODEL)
        have = {o.name for o in m.graph.output}
        inputs = {i.name for i in m.graph.input}
        for n in missing:
            if n not in have and n not in inputs:
                m.graph.output.append(helper.make_tensor_value_info(n, TensorProto.FLOAT, None))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.intra_op_num_threads = 2
        s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        outs = [n for n in missing if n not in inputs]
        parts = {n: [] for n in missing}
        for i in range(data["x"].shape[0]):
            xi = data["x"][i:i + 1]
            for n, v in zip(outs, s.run(outs, {"images": xi})):
                parts[n].append(np.abs(v).ravel())
            for n in missing:
                if n in inputs:
                    parts[n].append(np.abs(xi).ravel())
        for n in missing:
            data["acts"][n] = np.concatenate(parts[n])
    return data["acts"]


def groups_of(tensors):
    """Tensor name lists that share statistics: each Concat group, and every other tensor alone."""
    out, by_group = [], {}
    for name, t in tensors.items():
        if t["group"] >= 0:
            by_group.setdefault(t["group"], []).append(name)
        else:
            out.append([name])
    return out + list(by_group.values())


def pooled(data, tensors):
    acts = ort_abs_values(data, list(tensors))
    for members in groups_of(tensors):
        a = np.concatenate([acts[n] for n in members]) if len(members) > 1 else acts[members[0]]
        yield members, a


def test_ranges_cover_the_model(data):
    tensors = lowbit_ranges(data, "max")
    assert len(tensors) > 100
    m = onnx.load(MODEL)
    produced = {o for n in m.graph.node for o in n.output} | {i.name for i in m.graph.input}
    assert set(tensors) <= produced
    for members in groups_of(tensors):
        assert len({tensors[n]["amax"] for n in members}) == 1, members


def test_max_matches_numpy(data):
    tensors = lowbit_ranges(data, "max")
    for members, a in pooled(data, tensors):
        t = tensors[members[0]]
        assert t["count"] == a.size, members
        assert t["amax"] == pytest.approx(ref_max(a), rel=1e-5, abs=1e-7), members


@pytest.mark.parametrize("p", [99.99, 99.9])
def test_percentile_matches_numpy(data, p):
    tensors = lowbit_ranges(data, "percentile", extra=("--percentile", p))
    exact = 0
    for members, a in pooled(data, tensors):
        got = tensors[members[0]]["amax"]
        want = ref_percentile(a, p)
        fine_bin = 2.0 ** (np.floor(np.log2(a.max())) + 1) / (1 << FINE_LOG2)
        # Equal unless ORT's and lowbit's float rounding put a value on the other side of an edge.
        assert abs(got - want) <= fine_bin * 1.0001 + 1e-6 * want, (members, got, want)
        exact += got == pytest.approx(want, rel=1e-6)
    assert exact >= 0.9 * len(groups_of(tensors))


def test_entropy_matches_tensorrt_kl(data):
    tensors = lowbit_ranges(data, "entropy")
    clipped = 0
    for members, a in pooled(data, tensors):
        got = tensors[members[0]]["amax"]
        want, w = ref_entropy(a)
        assert abs(got - want) <= w * 1.0001 + 1e-6 * want, (members, got, want, w)
        clipped += want < 0.9 * a.max()
    assert clipped > 10  # the KL search really clips (it is not max in disguise)


@pytest.mark.parametrize("mode", ["int8", "fp8"])
def test_mse_matches_the_target_grid_search(data, mode):
    tensors = lowbit_ranges(data, "mse", mode)
    clipped = 0
    for members, a in pooled(data, tensors):
        got = tensors[members[0]]["amax"]
        want, w = ref_mse(a, mode)
        assert abs(got - want) <= w * 1.0001 + 1e-6 * want, (members, got, want, w)
        clipped += want < 0.99 * a.max()
    assert clipped > 10


def test_methods_give_different_ranges(data):
    """A method silently ignored would give another method's ranges."""
    runs = {m: lowbit_ranges(data, m) for m in ("max", "entropy", "mse")}
    runs["percentile"] = lowbit_ranges(data, "percentile", extra=("--percentile", 99.99))
    runs["mse-fp8"] = lowbit_ranges(data, "mse", "fp8")
    keys = list(runs)
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            common = runs[a].keys() & runs[b].keys()  # FP8 places fewer tensors
            assert len(common) > 50
            same = sum(runs[a][n]["amax"] == runs[b][n]["amax"] for n in common)
            assert same < 0.5 * len(common), (a, b, same)
