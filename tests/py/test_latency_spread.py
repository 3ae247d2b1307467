"""Latency that states its spread: `eval`'s metrics.json and `smoke`'s summary carry p10, the
median's binomial confidence interval, the spread and the raw per-image times (checked here
against NumPy and an independent binomial computation), and `compare` calls a variant faster
only when the medians differ by more than the sum of the spreads, says so, and draws the spreads
as error bars in report.html.
"""
import json
import math
import os
import subprocess

import numpy as np
import onnx
import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
ASSETS = os.path.join(SRC, "assets")
MODEL = os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx")
ANN = os.path.join(ASSETS, "val", "instances_val.json")
IMAGES = os.path.join(ASSETS, "val", "images")

pytestmark = pytest.mark.skipif(not LOWBIT or not os.path.exists(LOWBIT),
                                reason="LOWBIT_BIN not set")

RULE = "more than the sum of the two spreads"


def lowbit(*args):
    return subprocess.run([LOWBIT, *map(str, args)], capture_output=True, text=True)


def binom_half_cdf(n, k):
    return sum(math.comb(n, i) for i in range(0, k + 1)) / 2 ** n if k >= 0 else 0.0


def expected_ci(sorted_ms, level=0.95):
    """[x_(l), x_(n+1-l)] with the largest l whose coverage 1 - 2 P(B <= l-1) is >= level."""
    n = len(sorted_ms)
    l = 1
    while l + 1 <= (n + 1) // 2 and 1 - 2 * binom_half_cdf(n, l) >= level:
        l += 1
    return sorted_ms[l - 1], sorted_ms[n - l], 1 - 2 * binom_half_cdf(n, l - 1)


def check_stats(lat):
    t = np.asarray(lat["times_ms"], dtype=np.float64)
    assert len(t) == lat["samples"] and len(t) > 0
    assert np.all(t > 0)
    assert lat["mean_ms"] == pytest.approx(t.mean(), rel=1e-9)
    assert lat["median_ms"] == pytest.approx(np.percentile(t, 50), rel=1e-9)
    assert lat["p90_ms"] == pytest.approx(np.percentile(t, 90), rel=1e-9)
    assert lat["p10_ms"] == pytest.approx(np.percentile(t, 10), rel=1e-9)
    lo, hi, level = expected_ci(sorted(t))
    assert lat["median_ci_ms"] == pytest.approx([lo, hi], rel=1e-12)
    assert lat["median_ci_level"] == pytest.approx(level, abs=1e-12)
    assert lo <= lat["median_ms"] <= hi
    spread = max((lat["p90_ms"] - lat["p10_ms"]) / 2, lat["median_ms"] - lo, hi - lat["median_ms"])
    assert lat["spread_ms"] == pytest.approx(spread, rel=1e-9)


def test_ci_reference_itself():
    # The helper above against the textbook table: n=10 -> ranks (2, 9), n=20 -> (6, 15).
    assert expected_ci(list(range(1, 11)))[:2] == (2, 9)
    assert expected_ci(list(range(1, 21)))[:2] == (6, 15)


def test_eval_metrics_carry_the_spread(tmp_path):
    if not (os.path.isfile(MODEL) and os.path.isfile(ANN)):
        pytest.skip("no bundled model + val set")
    out = tmp_path / "metrics.json"
    r = lowbit("eval", "--quiet", MODEL, "--ann", ANN, "--images", IMAGES, "--max-images", 12,
               "--skip-latency", 2, "--threads", 1, "--out", out)
    assert r.returncode == 0, r.stderr
    lat = json.loads(out.read_text())["latency"]
    assert list(lat)[:4] == ["mean_ms", "median_ms", "p90_ms", "throughput_fps"]
    assert lat["samples"] == 10  # 12 images, the first 2 skipped
    check_stats(lat)
    assert "latency spread" in r.stdout


def test_smoke_prints_per_run_times(tmp_path):
    if not os.path.isfile(MODEL):
        pytest.skip("no bundled model")
    shape = json.loads(lowbit("info", "--json", MODEL).stdout)["inputs"][0]["shape"]
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    np.save(tmp_path / "x.npy", x)
    r = lowbit("smoke", MODEL, "--input", tmp_path / "x.npy", "--runs", 7, "--warmup", 1,
               "--threads", 1, "--out", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    lat = json.loads(r.stdout)["latency"]
    assert lat["runs"] == 7 and lat["warmup_runs"] == 1 and len(lat["times_ms"]) == 7
    check_stats(lat)
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["latency"] == lat


# ---------------------------------------------------------------------------------------------
# compare


def results(name, m5095, median, spread, onnx="x.onnx"):
    times = [median - spread, median, median + spread]
    return {"onnx_path": onnx, "data_root": "", "instances": "val.json", "images_dir": "images",
            "providers": ["CPUExecutionProvider"], "imgsz": 320, "max_images": 100,
            "warmup_runs": 1, "skip_latency": 1, "conf": 0.001, "iou": 0.7, "max_det": 300,
            "pre_nms_topk": 30000,
            "metrics": {"mAP_50_95": m5095, "mAP_50": m5095 + 0.2, "num_images": 100},
            "latency": {"mean_ms": median, "median_ms": median, "p90_ms": median + spread,
                        "throughput_fps": 1000.0 / median, "samples": 3,
                        "p10_ms": median - spread,
                        "median_ci_ms": [median - spread, median + spread],
                        "median_ci_level": 0.75, "spread_ms": spread, "times_ms": times},
            "variant": {"name": name, "mode": "int8" if name != "baseline" else "fp32",
                        "quantized_nodes": 0 if name == "baseline" else 100,
                        "model_bytes": 1000000}}


def write(d, docs):
    d.mkdir(parents=True, exist_ok=True)
    files = []
    for doc in docs:
        p = d / (doc["variant"]["name"] + ".json")
        p.write_text(json.dumps(doc))
        files.append(str(p))
    return files


def test_compare_inside_the_spread_is_not_faster(tmp_path):
    # The case: int8_k5 is 1 ms faster than int8 but both spread 0.9 ms: no measurable
    # difference, so the more accurate int8 is recommended, and neither beats the baseline.
    files = write(tmp_path / "results", [results("baseline", 0.7040, 15.1, 0.9),
                                         results("int8", 0.7031, 14.4, 0.9),
                                         results("int8_k5", 0.7011, 13.4, 0.9)])
    summary, html = tmp_path / "summary.md", tmp_path / "report.html"
    r = lowbit("compare", *files, "--out", summary, "--html", html)
    assert r.returncode == 0, r.stderr
    assert "recommended: int8 (" in r.stdout
    assert RULE in r.stdout and "rule: " in r.stdout
    assert "not measurably slower than the fastest" in r.stdout  # the recommendation rule
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if "median" in ln and "+/-" in ln}
    assert "no measurable difference" in lines["int8_k5"]
    assert "no measurable difference" in lines["int8"]

    md = summary.read_text()
    lat = md[md.index("## Latency"):md.index("## Recommendation")]
    assert RULE in lat
    assert "| int8_k5 | 13.400 | 0.900 |" in lat
    assert "**Recommended: `int8`**" in md

    h = html.read_text()
    assert h.count('class="errbar"') == 3
    assert RULE in h and "<h2>Latency</h2>" in h


def test_compare_beyond_the_spread_is_faster(tmp_path):
    files = write(tmp_path / "results", [results("baseline", 0.7040, 15.1, 0.3),
                                         results("int8", 0.7031, 14.4, 0.3),
                                         results("int8_k5", 0.7011, 6.0, 0.3)])
    r = lowbit("compare", *files)
    assert r.returncode == 0, r.stderr
    assert "recommended: int8_k5 (" in r.stdout
    assert "; measurably faster than the baseline" in r.stdout
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if "median" in ln and "+/-" in ln}
    assert "faster by 9.100 ms (> 0.600 ms of spreads)" in lines["int8_k5"]
    # 0.7 ms against 0.6 ms of spreads: measurable too.
    assert "faster by 0.700 ms" in lines["int8"]


def test_compare_reads_results_without_a_spread(tmp_path):
    old = results("baseline", 0.70, 15.0, 0.5)
    for k in ("samples", "p10_ms", "median_ci_ms", "median_ci_level", "spread_ms", "times_ms"):
        del old["latency"][k]
    files = write(tmp_path / "results", [old, results("int8", 0.699, 14.0, 0.5)])
    summary = tmp_path / "summary.md"
    r = lowbit("compare", *files, "--out", summary)
    assert r.returncode == 0, r.stderr
    assert "No spread recorded for baseline" in summary.read_text()
    bad = results("int8", 0.699, 14.0, 0.5)
    bad["latency"]["spread_ms"] = -1
    bad_file = write(tmp_path / "bad", [bad])[0]
    r = lowbit("compare", bad_file)
    assert r.returncode != 0 and "latency.spread_ms" in r.stderr


def test_compare_times_the_models_again_interleaved(tmp_path):
    # The recorded latencies say the FP32 model is 10x faster than its copy; timed again in
    # interleaved rounds, the two identical models take about the same time, and every number
    # comes from those rounds.
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(open(MODEL, "rb").read())
    # A model that only copies its input: faster than the detector in every round.
    tiny = tmp_path / "tiny.onnx"
    x = onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, 320, 320])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, 320, 320])
    g = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["images"], ["y"])], "tiny", [x],
                               [y])
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)]),
              str(tiny))
    base = results("baseline", 0.7040, 1.0, 0.01, onnx=MODEL)
    same = results("int8", 0.7031, 10.0, 0.01, onnx=str(copy))
    fast = results("tiny", 0.7000, 50.0, 0.01, onnx=str(tiny))
    files = write(tmp_path / "results", [base, same, fast])
    summary = tmp_path / "summary.md"
    r = lowbit("compare", *files, "--interleave-rounds", 7, "--threads", 1, "--out", summary)
    assert r.returncode == 0, r.stderr
    assert "timing 3 models in 7 interleaved rounds" in r.stderr
    assert "Latencies measured here: 7 interleaved rounds" in r.stdout and "1 thread," in r.stdout
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if "median" in ln and "+/-" in ln}
    medians = {k: float(v.split("median ")[1].split()[0]) for k, v in lines.items()}
    assert medians["baseline"] != 1.0 and medians["int8"] != 10.0
    # The verdict follows the new numbers (the recorded ones said: slower by 9 ms), round by
    # round: with 7 rounds the median difference's interval is the min..max of the 7.
    assert "slower by 9.000" not in lines["int8"] and abs(medians["int8"] / medians["baseline"]
                                                          - 1) < 0.5, r.stdout
    assert "paired over 7 rounds" in lines["int8"], r.stdout
    assert "faster by" in lines["tiny"] and "paired over 7 rounds" in lines["tiny"], r.stdout
    # The tiny model wins every round: its 7 differences, hence the interval, are all below 0.
    tiny_hi = float(lines["tiny"].split("..")[1].split()[0])
    assert tiny_hi < 0, lines["tiny"]
    md = summary.read_text()
    assert "Latencies measured by compare: 7 interleaved rounds" in md
    # 7 samples each: the median's interval is their min..max (binomial level 0.984).
    row = [ln for ln in md.splitlines() if ln.startswith("| int8 |") and "(98.4%)" in ln]
    assert row and row[0].split("|")[7].strip() == "7", md

    # A results file whose model is gone: an error naming it, nothing written.
    copy.unlink()
    summary.unlink()
    r = lowbit("compare", *files, "--interleave-rounds", 3, "--out", summary)
    assert r.returncode != 0 and "copy.onnx" in r.stderr and "was not found" in r.stderr
    assert not summary.exists()
    r = lowbit("compare", *files, "--interleave-rounds", -1)
    assert r.returncode != 0


def test_compare_interleaved_runs_each_variant_at_its_size(tmp_path):
    # One model with a symbolic image size evaluated at 64 and at 1280, next to the bundled
    # model (fixed 320): each variant is timed at its own evaluated size (once, the last
    # variant's size went to every model, and the fixed-size model refused it).
    relu = tmp_path / "relu.onnx"
    x = onnx.helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, "h", "w"])
    y = onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1, 3, "h", "w"])
    g = onnx.helper.make_graph([onnx.helper.make_node("Relu", ["images"], ["y"])], "relu", [x],
                               [y])
    onnx.save(onnx.helper.make_model(g, opset_imports=[onnx.helper.make_opsetid("", 13)]),
              str(relu))
    small = results("small", 0.7000, 1.0, 0.01, onnx=str(relu))
    small["imgsz"] = 64
    big = results("big", 0.7000, 1.0, 0.01, onnx=str(relu))
    big["imgsz"] = 1280
    files = write(tmp_path / "results", [results("baseline", 0.7040, 1.0, 0.01, onnx=MODEL),
                                         small, big])
    r = lowbit("compare", *files, "--interleave-rounds", 5, "--threads", 1)
    assert r.returncode == 0, r.stderr
    lines = {ln.split()[0]: ln for ln in r.stdout.splitlines() if "median" in ln and "+/-" in ln}
    medians = {k: float(v.split("median ")[1].split()[0]) for k, v in lines.items()}
    # 400 times the pixels: the small size wins by far more than any machine noise.
    assert medians["small"] * 20 < medians["big"], r.stdout
