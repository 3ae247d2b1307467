"""Shards and `lowbit merge`, on the bundled model and val set.

For eval, sensitivity and candidates, the job run as N = 1, 2, 3 shards (`--shard I/N
--shard-dir D`) and merged must write what the single process writes: the 12 COCO stats to
1e-12 (they are in fact bit-identical), the same detections, the same sensitivity scores and
ranking, the same candidate results (timings aside). A shard set that is incomplete, has a
shard twice, or mixes models or configurations is refused, naming the files, and nothing is
written.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SOURCE_DIR = Path(os.environ.get("LOWBIT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
ASSETS = SOURCE_DIR / "assets"
MODEL = ASSETS / "shapes-yolov10m-w0p1875-raw.onnx"
OTHER_MODEL = ASSETS / "shapes-yolov10m-w0p1875.onnx"
CALIB_LIST = ASSETS / "calib" / "calib100.txt"
IMAGES = 10  # eval images per job
THREADS = 2

pytestmark = pytest.mark.skipif(not LOWBIT or not Path(LOWBIT).exists() or not MODEL.exists(),
                                reason="LOWBIT_BIN is not set to the lowbit binary, or no model")


def lowbit(*args, check=True):
    r = subprocess.run([LOWBIT, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


def sharded(args, n, shard_dir):
    """Runs `lowbit ARGS --shard I/N --shard-dir D` for every I, then `lowbit merge D`."""
    for i in range(n):
        r = lowbit(*args, "--shard", f"{i}/{n}", "--shard-dir", shard_dir)
        assert f"shard {i}/{n}" in r.stdout
    return lowbit("merge", shard_dir)


def without_timing(metrics):
    d = dict(metrics)
    d.pop("latency", None)
    return d


@pytest.fixture(scope="module")
def calib_npy(tmp_path_factory):
    d = tmp_path_factory.mktemp("calib")
    lines = [l.strip() for l in CALIB_LIST.read_text().splitlines() if l.strip()][:4]
    lst = d / "list.txt"
    lst.write_text("".join(str(CALIB_LIST.parent / l) + "\n" for l in lines))
    out = d / "calib.npy"
    lowbit("calib", "--list", lst, "--imgsz", 320, "--out", out)
    return out


# ---------------------------------------------------------------------------------------------
# eval


def eval_args(out, model=MODEL, conf="0.001", images=IMAGES):
    return ["eval", model, "--max-images", images, "--threads", THREADS, "--conf", conf, "-q",
            "--out", out / "metrics.json", "--save-detections", out / "dets.json"]


@pytest.fixture(scope="module")
def eval_single(tmp_path_factory):
    d = tmp_path_factory.mktemp("eval1")
    lowbit(*eval_args(d))
    return d


@pytest.mark.parametrize("n", [1, 2, 3])
def test_eval_merged_equals_single(eval_single, tmp_path, n):
    # The shards record their outputs' paths: use the same names under another folder.
    r = sharded(eval_args(tmp_path), n, tmp_path / "shards")
    ref = json.loads((eval_single / "metrics.json").read_text())
    got = json.loads((tmp_path / "metrics.json").read_text())
    assert len(got["metrics"]["stats"]) == 12
    for a, b in zip(got["metrics"]["stats"], ref["metrics"]["stats"]):
        assert abs(a - b) <= 1e-12
    assert got["metrics"]["num_detections"] == ref["metrics"]["num_detections"]
    assert got["metrics"]["num_images"] == IMAGES
    assert without_timing(got) == without_timing(ref)  # every other field of metrics.json
    assert got["latency"].keys() == ref["latency"].keys()
    assert (tmp_path / "dets.json").read_text() == (eval_single / "dets.json").read_text()
    assert "mAP50-95" in r.stdout
    assert len(list((tmp_path / "shards").glob("shard-*-of-*.json"))) == n


def test_merge_refuses_bad_shards(tmp_path):
    d = tmp_path / "shards"

    def args(**kw):
        return eval_args(tmp_path, images=4, **kw)

    for i in range(3):
        lowbit(*args(), "--shard", f"{i}/3", "--shard-dir", d)
    out = tmp_path / "metrics.json"

    def refused(*words):
        r = lowbit("merge", d, check=False)
        assert r.returncode != 0, r.stdout
        for w in words:
            assert w in r.stderr, (w, r.stderr)
        assert not out.exists(), "merge wrote an output although it refused"
        assert not (tmp_path / "dets.json").exists()

    # Missing.
    keep = d / "keep.json"
    shutil.move(d / "shard-1-of-3.json", keep)
    refused("missing", "shard-1-of-3.json")
    # Duplicated: shard 0's content under shard 1's name.
    shutil.copy(d / "shard-0-of-3.json", d / "shard-1-of-3.json")
    refused("twice", "shard-0-of-3.json", "shard-1-of-3.json")
    shutil.move(keep, d / "shard-1-of-3.json")
    # Another model.
    other = tmp_path / "other"
    lowbit(*args(model=OTHER_MODEL), "--shard", "2/3", "--shard-dir", other)
    shutil.copy(other / "shard-2-of-3.json", d / "shard-2-of-3.json")
    refused("another model", "shard-2-of-3.json")
    # Another configuration.
    lowbit(*args(conf="0.25"), "--shard", "2/3", "--shard-dir", d)
    refused("another configuration", "shard-2-of-3.json")
    # Another shard count.
    lowbit(*args(), "--shard", "2/3", "--shard-dir", d)
    lowbit(*args(), "--shard", "0/2", "--shard-dir", d)
    refused("another shard count", "shard-0-of-2.json")
    (d / "shard-0-of-2.json").unlink()
    # Not a shard file.
    (d / "shard-9-of-3.json").write_text("{\"partial\": ")
    refused("not a lowbit shard file", "shard-9-of-3.json")
    (d / "shard-9-of-3.json").unlink()
    # Whole again: merges.
    lowbit("merge", d)
    assert out.exists()


def test_shard_flags_checked(tmp_path):
    for bad in (["--shard", "2/2", "--shard-dir", tmp_path], ["--shard", "x", "--shard-dir",
                tmp_path], ["--shard", "0/2"], ["--shard-dir", tmp_path]):
        r = lowbit("eval", MODEL, "--max-images", 2, *bad, check=False)
        assert r.returncode == 2, (bad, r.stderr)
    r = lowbit("merge", tmp_path / "none", check=False)
    assert r.returncode != 0 and "does not exist" in r.stderr


# ---------------------------------------------------------------------------------------------
# sensitivity


def sens_args(calib_npy, out, metric="output-mse"):
    a = ["sensitivity", MODEL, "--mode", "int8", "--calib", calib_npy, "--threads", THREADS,
         "--metric", metric, "--out", out / "report.json", "--quiet"]
    if metric == "map":
        a += ["--val-images", 2]
    else:
        a += ["--images", 3]
    return a


def scores(report):
    return [(n["rank"], n["node"], n["score"], n["metrics"]) for n in report["nodes"]]


SENS_CASES = [("output-mse", 1), ("output-mse", 2), ("output-mse", 3), ("local-sqnr", 2),
              ("map", 2)]


@pytest.fixture(scope="module")
def sens_single(tmp_path_factory, calib_npy):
    out = {}
    for metric in sorted({m for m, _ in SENS_CASES}):
        d = tmp_path_factory.mktemp("sens1")
        lowbit(*sens_args(calib_npy, d, metric))
        out[metric] = json.loads((d / "report.json").read_text())
    return out


@pytest.mark.parametrize("metric,n", SENS_CASES)
def test_sensitivity_merged_equals_single(sens_single, calib_npy, tmp_path, metric, n):
    sharded(sens_args(calib_npy, tmp_path, metric), n, tmp_path / "shards")
    ref = sens_single[metric]
    got = json.loads((tmp_path / "report.json").read_text())
    assert scores(got) == scores(ref)  # identical scores, metrics and ranking
    assert got.get("reference") == ref.get("reference")
    assert got["images"] == ref["images"]
    assert (tmp_path / "report.md").exists()


# ---------------------------------------------------------------------------------------------
# candidates


@pytest.fixture(scope="module")
def schemes(tmp_path_factory, sens_single):
    d = tmp_path_factory.mktemp("schemes")
    (d / "report.json").write_text(json.dumps(sens_single["output-mse"]))
    lowbit("schemes", "--report", d / "report.json", "--ks", 0, 2, "--out-dir", d / "s",
           "--model", MODEL)
    return d / "s"


def cand_args(calib_npy, schemes, out):
    return ["candidates", MODEL, "--schemes", schemes, "--mode", "int8", "--calib", calib_npy,
            "--out-dir", out / "candidates", "--results-dir", out / "results", "--max-images",
            4, "--threads", THREADS, "-q"]


@pytest.fixture(scope="module")
def cand_single(tmp_path_factory, calib_npy, schemes):
    d = tmp_path_factory.mktemp("cand1")
    r = lowbit(*cand_args(calib_npy, schemes, d))
    return d, r


def normalized(d):
    out = {}
    for p in sorted((d / "results").glob("*.json")):
        m = json.loads(p.read_text().replace(str(d), "<out>"))
        out[p.name] = without_timing(m)
    return out


@pytest.mark.parametrize("n", [1, 2, 3])
def test_candidates_merged_equals_single(cand_single, calib_npy, schemes, tmp_path, n):
    ref_dir, ref = cand_single
    r = sharded(cand_args(calib_npy, schemes, tmp_path), n, tmp_path / "shards")
    assert normalized(tmp_path) == normalized(ref_dir)
    assert sorted(normalized(tmp_path)) == ["int8_k0.json", "int8_k2.json"]

    def ranking(text):
        rows = [ln.split() for ln in text.splitlines()[1:] if ln.strip()]
        return [(row[0], row[3], row[4]) for row in rows]  # variant, mAP50-95, mAP50

    assert ranking(r.stdout) == ranking(ref.stdout)
    for k in (0, 2):
        a = (tmp_path / "candidates" / f"{MODEL.stem}-int8-k{k}.onnx").read_bytes()
        b = (ref_dir / "candidates" / f"{MODEL.stem}-int8-k{k}.onnx").read_bytes()
        assert a == b
