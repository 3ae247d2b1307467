"""`lowbit latency`: models timed against each other in interleaved rounds in one process.

Checks what the JSON says about the measurement, never how fast anything was (tests do not assert
wall time): one sample per model per round, the statistics are those of the samples (numpy's
median and percentiles), each later model's ratios are its samples over the first model's of the
same round, and bad input fails with a message naming the file or flag and a non-zero exit.
"""
import json
import os
import subprocess

import numpy as np
import pytest

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
MODEL = os.path.join(SRC, "assets", "shapes-yolov10m-w0p1875-raw.onnx")
E2E = os.path.join(SRC, "assets", "shapes-yolov10m-w0p1875.onnx")

pytestmark = pytest.mark.skipif(not os.path.exists(BIN), reason="no lowbit binary")


def latency(*args):
    return subprocess.run([BIN, "latency", *args], capture_output=True, text=True, timeout=600)


def test_samples_statistics_and_round_ratios():
    r = latency(MODEL, E2E, MODEL, "--rounds", "5", "--warmup", "1", "--threads", "1")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["rounds"] == 5 and j["warmup_rounds"] == 1 and j["warm_runs"] == 1
    assert [m["model"] for m in j["models"]] == [MODEL, E2E, MODEL]
    first = np.array(j["models"][0]["latency"]["times_ms"])
    assert "ratio_to_first" not in j["models"][0]
    for m in j["models"]:
        lat = m["latency"]
        t = np.array(lat["times_ms"])
        assert len(t) == 5 and (t > 0).all() and lat["samples"] == 5
        assert lat["median_ms"] == pytest.approx(np.median(t))
        assert lat["p90_ms"] == pytest.approx(np.percentile(t, 90))
        assert lat["p10_ms"] == pytest.approx(np.percentile(t, 10))
        # 5 samples are too few for a 95 % interval of the median: it is min..max.
        assert lat["median_ci_ms"] == pytest.approx([t.min(), t.max()])
    for m in j["models"][1:]:
        q = m["ratio_to_first"]
        ratio = np.array(m["latency"]["times_ms"]) / first
        assert q["per_round"] == pytest.approx(ratio.tolist())
        assert q["median"] == pytest.approx(np.median(ratio))
        assert q["min"] == pytest.approx(ratio.min()) and q["max"] == pytest.approx(ratio.max())
        assert q["median_ci"] == pytest.approx([ratio.min(), ratio.max()])
    # The summary on stderr names every model, the later ones with their ratio.
    assert r.stderr.count("lowbit latency: ") == 3 and r.stderr.count(" of the first") == 2


def test_more_rounds_give_a_median_interval_inside_the_range():
    r = latency(MODEL, MODEL, "--rounds", "12", "--warmup", "0", "--warm-runs", "0",
                "--threads", "1")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["warm_runs"] == 0
    q = j["models"][1]["ratio_to_first"]
    ratio = np.sort(q["per_round"])
    # 12 samples: the 95 % interval of the median is [x_(3), x_(10)] (binomial order statistics).
    assert q["median_ci"] == pytest.approx([ratio[2], ratio[9]])
    assert q["median_ci_level"] >= 0.95


@pytest.mark.parametrize("args,code,needle", [
    (["--rounds", "0", MODEL], 2, "--rounds"),
    (["--warm-runs", "-1", MODEL], 2, "--warm-runs"),
    ([MODEL, "no-such-model.onnx"], 2, "no-such-model.onnx"),
    ([], 2, "models"),
])
def test_bad_arguments_are_usage_errors(args, code, needle):
    r = latency(*args)
    assert r.returncode == code, r.stderr
    assert needle in r.stderr and r.stdout == ""


def test_a_file_that_is_not_onnx_fails_naming_it(tmp_path):
    bad = tmp_path / "not-a-model.onnx"
    bad.write_bytes(b"\x08\x07garbage that is not a protobuf ModelProto" * 3)
    r = latency(MODEL, str(bad), "--rounds", "1")
    assert r.returncode == 2, r.stderr  # a bad input file is a usage error, as in `smoke`
    assert "not-a-model.onnx" in r.stderr and r.stdout == ""


def test_input_files_feed_every_model(tmp_path):
    # A seeded image-like input of the bundled model's shape, fed to both models; the JSON names
    # the file where it said "constant" before.
    x = np.random.default_rng(3).random((1, 3, 320, 320), dtype=np.float32)
    f = tmp_path / "x.npy"
    np.save(f, x)
    r = latency(MODEL, E2E, "--input", str(f), "--rounds", "2", "--warmup", "0", "--threads", "1")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["input"] == [str(f)]
    assert all(len(m["latency"]["times_ms"]) == 2 for m in j["models"])
    r = latency(MODEL, "--rounds", "1", "--threads", "1")
    assert json.loads(r.stdout)["input"].startswith("constant")


def test_input_files_of_the_wrong_shape_or_count_fail_naming_them(tmp_path):
    f = tmp_path / "small.npy"
    np.save(f, np.zeros((1, 3, 64, 64), dtype=np.float32))
    r = latency(MODEL, "--input", str(f), "--rounds", "1")
    assert r.returncode == 2 and r.stdout == ""
    assert "[1,3,320,320]" in r.stderr and "[1,3,64,64]" in r.stderr and MODEL in r.stderr
    r = latency(MODEL, "--input", str(f), "--input", str(f), "--rounds", "1")
    assert r.returncode == 2 and "--input was given 2 time(s)" in r.stderr
    r = latency(MODEL, "--input", str(tmp_path / "missing.npy"), "--rounds", "1")
    assert r.returncode == 2 and "missing.npy" in r.stderr
