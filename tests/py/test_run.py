"""`lowbit candidates` and `lowbit run` end to end, on the bundled model and val set.

candidates: one calibration pass serves every scheme, and each candidate must be exactly the model
`lowbit quantize --exclude-nodes-file` writes on its own (byte for byte); the excluded nodes have
no Q/DQ on their inputs; results files are the eval schema plus "variant".

run: a run killed (SIGKILL) at several points and resumed must end with the same results and
summary table as an uninterrupted run, skipping the steps it had finished; --force redoes them.
"""
import json
import os
import shutil
import signal
import subprocess
import time

import onnx
import pytest

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ASSETS = os.path.join(SRC, "assets")
MODEL = os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx")
STEM = "shapes-yolov10m-w0p1875-raw"
THREADS = "2"

pytestmark = pytest.mark.skipif(not os.path.exists(MODEL), reason="bundled model missing")


def lowbit(*args, check=True, **kw):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


def dq_fed_nodes(model):
    """Names of the non-Q/DQ nodes that read a DequantizeLinear output."""
    dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    return {n.name for n in model.graph.node
            if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
            and any(i in dq for i in n.input)}


# ---------------------------------------------------------------------------------------------
# candidates


@pytest.fixture(scope="module")
def calib_npy(tmp_path_factory):
    out = tmp_path_factory.mktemp("calib") / "calib.npy"
    lowbit("calib", "--list", os.path.join(ASSETS, "calib", "calib100.txt"), "--imgsz", 320,
           "--max-images", 8, "--out", out)
    return out


@pytest.fixture(scope="module")
def schemes(tmp_path_factory):
    """k0: nothing excluded; k2: the stem Conv and a head Conv, both quantized in k0."""
    d = tmp_path_factory.mktemp("schemes")
    convs = [n.name for n in onnx.load(MODEL).graph.node if n.op_type == "Conv"]
    picked = [convs[1], [c for c in convs if c.startswith("/model.23/")][0]]
    (d / "nodes_to_exclude_k0.txt").write_text("")
    (d / "nodes_to_exclude_k2.txt").write_text("".join(n + "\n" for n in picked))
    (d / "nodes_to_exclude_k7.txt").write_text("# not selected by --ks\n")
    return d, picked


@pytest.fixture(scope="module")
def candidates(tmp_path_factory, calib_npy, schemes):
    d, _ = schemes
    root = tmp_path_factory.mktemp("cand")
    r = lowbit("candidates", MODEL, "--schemes", d, "--ks", 0, 2, "--mode", "int8", "--calib",
               calib_npy, "--out-dir", root / "candidates", "--max-images", 6, "--threads",
               THREADS)
    return root, r


def test_candidates_files(candidates):
    root, r = candidates
    assert sorted(os.listdir(root / "candidates")) == [f"{STEM}-int8-k0.onnx",
                                                       f"{STEM}-int8-k2.onnx"]
    assert sorted(os.listdir(root / "results")) == ["int8_k0.json", "int8_k2.json"]
    assert "int8_k0" in r.stdout and "int8_k2" in r.stdout


def test_candidates_results_schema(candidates, schemes):
    root, _ = candidates
    eval_keys = None
    for k in (0, 2):
        res = json.loads((root / "results" / f"int8_k{k}.json").read_text())
        keys = list(res)
        assert keys[-1] == "variant"
        if eval_keys is None:
            eval_keys = keys
        assert keys == eval_keys
        for key in ("onnx_path", "metrics", "latency", "max_images", "imgsz"):
            assert key in res
        assert res["max_images"] == 6
        assert 0.0 < res["metrics"]["mAP_50_95"] <= 1.0
        v = res["variant"]
        onnx_path = root / "candidates" / f"{STEM}-int8-k{k}.onnx"
        assert res["onnx_path"] == str(onnx_path)
        assert v["name"] == f"int8_k{k}" and v["mode"] == "int8" and v["k"] == k
        assert v["excluded_nodes"] == k
        assert v["model_bytes"] == os.path.getsize(onnx_path)
        assert v["quantized_nodes"] == len(dq_fed_nodes(onnx.load(str(onnx_path))))
        assert v["calibration_method"]
        assert v["scheme"].endswith(f"nodes_to_exclude_k{k}.txt")


def test_candidates_exclusions_lack_qdq(candidates, schemes):
    root, _ = candidates
    _, picked = schemes
    k0 = dq_fed_nodes(onnx.load(str(root / "candidates" / f"{STEM}-int8-k0.onnx")))
    k2 = dq_fed_nodes(onnx.load(str(root / "candidates" / f"{STEM}-int8-k2.onnx")))
    for name in picked:
        assert name in k0, f"{name} is not quantized even without exclusions"
        assert name not in k2, f"{name} is excluded but still reads a DequantizeLinear"
    assert len(k2) < len(k0)
    res = json.loads((root / "results" / "int8_k2.json").read_text())
    assert res["variant"]["quantized_nodes"] == len(k2)


def test_candidates_equal_standalone_quantize(candidates, schemes, calib_npy, tmp_path):
    """Ranges calibrated once over the union of the placements give each candidate exactly the
    model that calibrating for its own placement gives."""
    root, _ = candidates
    d, _ = schemes
    for k in (0, 2):
        out = tmp_path / f"q{k}.onnx"
        lowbit("quantize", MODEL, "--mode", "int8", "--calib", calib_npy, "--exclude-nodes-file",
               d / f"nodes_to_exclude_k{k}.txt", "--out", out, "--threads", THREADS)
        cand = root / "candidates" / f"{STEM}-int8-k{k}.onnx"
        assert out.read_bytes() == cand.read_bytes(), f"k{k} differs from lowbit quantize"


def test_candidates_metrics_equal_standalone_eval(candidates, tmp_path):
    """Each candidate's metrics are what `lowbit eval` reports for its model on its own."""
    root, _ = candidates
    for k in (0, 2):
        res = json.loads((root / "results" / f"int8_k{k}.json").read_text())
        out = tmp_path / f"eval{k}.json"
        lowbit("eval", root / "candidates" / f"{STEM}-int8-k{k}.onnx", "--max-images", 6,
               "--threads", THREADS, "--quiet", "--out", out)
        alone = json.loads(out.read_text())
        assert alone["metrics"] == res["metrics"], k
        assert alone["max_images"] == res["max_images"]


def test_candidates_missing_scheme(calib_npy, schemes, tmp_path):
    d, _ = schemes
    r = lowbit("candidates", MODEL, "--schemes", d, "--ks", 5, "--mode", "int8", "--calib",
               calib_npy, "--out-dir", tmp_path / "c", check=False)
    assert r.returncode != 0
    assert "nodes_to_exclude_k5.txt" in r.stderr


# ---------------------------------------------------------------------------------------------
# run: resume after SIGKILL


def run_args(root, calib_list):
    return ["run", "--root", root, "--max-images", 20, "--ks", 0, 2, "--modes", "fp8",
            "--sensitivity-images", 2, "--threads", THREADS, "--calib-list", calib_list]


@pytest.fixture(scope="module")
def calib_list(tmp_path_factory):
    """8 of the bundled calibration images, by absolute path."""
    src = os.path.join(ASSETS, "calib", "calib100.txt")
    lines = [ln.strip() for ln in open(src) if ln.strip() and not ln.startswith("#")][:8]
    p = tmp_path_factory.mktemp("list") / "calib8.txt"
    p.write_text("".join(os.path.join(ASSETS, "calib", ln) + "\n" for ln in lines))
    return p


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, calib_list):
    root = tmp_path_factory.mktemp("run") / "ref"
    r = lowbit(*run_args(root, calib_list), timeout=900)
    return root, r


def killed_run(args, should_kill, log, timeout=600, exe=None):
    """Starts `lowbit ARGS` (or `exe ARGS`), SIGKILLs it as soon as should_kill() holds; True if
    it was killed."""
    with open(log, "a") as f:
        p = subprocess.Popen([exe or BIN, *map(str, args)], stdout=f, stderr=f)
        t0 = time.time()
        while p.poll() is None:
            if should_kill():
                p.send_signal(signal.SIGKILL)
                p.wait()
                return True
            assert time.time() - t0 < timeout, "run did not reach the kill point"
            time.sleep(0.02)
    return False


def normalized_results(root):
    """results/*.json without timing fields, the run root's path replaced."""
    out = {}
    for name in sorted(os.listdir(root / "results")):
        text = (root / "results" / name).read_text().replace(str(root), "<root>")
        d = json.loads(text)
        d.pop("latency")
        out[name] = d
    return out


def table_without_timing(text, root):
    """The markdown table compare prints, without latency columns, the run root's path replaced."""
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")]
            for ln in text.replace(str(root), "<root>").splitlines() if ln.startswith("|")]
    assert len(rows) >= 3, text
    keep = [i for i, h in enumerate(rows[0])
            if not any(w in h.lower() for w in ("ms", "latency", "fps"))]
    return [[r[i] for i in keep] for r in rows]


def manifests(root):
    d = root / ".lowbit-run"
    if not d.exists():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in d.glob("*.json")}


EXPECTED = ["baseline-onnx/summary.json", "baseline-coco/metrics.json", "calib/calib.npy",
            f"onnx/{STEM}-int8-qdq.onnx", f"onnx/{STEM}-int8-head-qdq.onnx",
            "nodes_to_exclude_head.txt", "sensitivity/fp8/report.json",
            "schemes/fp8/nodes_to_exclude_k0.txt", "schemes/fp8/nodes_to_exclude_k2.txt",
            f"candidates/{STEM}-fp8-k0.onnx", f"candidates/{STEM}-fp8-k2.onnx",
            "results/baseline.json", "results/int8.json", "results/int8_head.json",
            "results/fp8_k0.json", "results/fp8_k2.json", "summary.md", "report.html",
            "run-times.json"]


def test_run_layout(reference_run):
    root, r = reference_run
    for rel in EXPECTED:
        assert (root / rel).exists(), rel
    times = json.loads((root / "run-times.json").read_text())
    assert [s["status"] for s in times["steps"]] == ["ran"] * len(times["steps"])
    assert len(times["steps"]) == 12
    assert str(root) in r.stdout and "baseline" in r.stdout
    table_without_timing(r.stdout, root)
    assert json.loads((root / "results/int8_head.json").read_text())["variant"][
        "excluded_nodes"] == len((root / "nodes_to_exclude_head.txt").read_text().split())


def test_run_rerun_skips_everything(reference_run, calib_list):
    root, _ = reference_run
    before = manifests(root)
    r = lowbit(*run_args(root, calib_list), timeout=900)
    times = json.loads((root / "run-times.json").read_text())
    assert [s["status"] for s in times["steps"]] == ["skipped"] * len(times["steps"])
    assert manifests(root) == before
    assert table_without_timing(r.stdout, root) == table_without_timing(
        (root / "logs" / "compare.log").read_text(), root)


def test_run_resumes_after_kills(reference_run, calib_list, tmp_path):
    ref_root, ref = reference_run
    root = tmp_path / "killed"
    args = run_args(root, calib_list)
    log = tmp_path / "killed.log"
    state = root / ".lowbit-run"
    cand = root / "candidates" / f"{STEM}-fp8-k0.onnx"
    # 1. between steps: right after calibration finished.
    assert killed_run(args, lambda: (state / "calib.json").exists(), log)
    # 2. mid-step: the INT8 model is written, its evaluation is running.
    assert killed_run(args, lambda: (root / "onnx" / f"{STEM}-int8-qdq.onnx").exists()
                      and not (state / "int8-eval.json").exists(), log)
    # 3. mid-step: one candidate written, the second not yet evaluated.
    assert killed_run(args, lambda: cand.exists(), log)
    assert not (state / "candidates-fp8.json").exists()
    done = manifests(root)
    assert {"smoke", "baseline", "calib", "int8", "sensitivity-fp8", "schemes-fp8"} <= set(done)

    r = lowbit(*args, timeout=900)
    times = {s["step"]: s["status"] for s in json.loads((root / "run-times.json").read_text())[
        "steps"]}
    after = manifests(root)
    for step, status in times.items():
        if step in done:
            assert status == "skipped", step
            assert after[step]["finished"] == done[step]["finished"], step
        else:
            assert status == "ran", step
    assert times["candidates-fp8"] == "ran" and times["compare"] == "ran"

    assert normalized_results(root) == {
        k: json.loads(json.dumps(v).replace(str(ref_root), "<root>"))
        for k, v in normalized_results(ref_root).items()}
    assert table_without_timing(r.stdout, root) == table_without_timing(ref.stdout, ref_root)

    # --force redoes every step and lands on the same results.
    r = lowbit(*args, "--force", timeout=900)
    times = json.loads((root / "run-times.json").read_text())
    assert [s["status"] for s in times["steps"]] == ["ran"] * len(times["steps"])
    assert manifests(root)["smoke"]["seconds"] != after["smoke"]["seconds"]  # rewritten
    assert table_without_timing(r.stdout, root) == table_without_timing(ref.stdout, ref_root)


def test_run_force_step(reference_run, calib_list):
    root, _ = reference_run
    r = lowbit(*run_args(root, calib_list), "--force-step", "head-exclude", timeout=900)
    times = {s["step"]: s["status"] for s in json.loads((root / "run-times.json").read_text())[
        "steps"]}
    assert times["head-exclude"] == "ran"
    # Same list again: everything downstream is still up to date.
    assert times["int8-head"] == "skipped" and times["compare"] == "skipped"
    r = lowbit(*run_args(root, calib_list), "--force-step", "nope", check=False)
    assert r.returncode == 2 and "nope" in r.stderr


def test_run_default_modes(tmp_path, calib_list):
    """Without --modes the run does both modes' sensitivity, schemes and candidates."""
    root = tmp_path / "defaults"
    lowbit("run", "--root", root, "--max-images", 4, "--ks", 0, "--sensitivity-images", 1,
           "--threads", THREADS, "--calib-list", calib_list, timeout=900)
    steps = [s["step"] for s in json.loads((root / "run-times.json").read_text())["steps"]]
    for mode in ("fp8", "int8"):
        for step in ("sensitivity", "schemes", "candidates"):
            assert f"{step}-{mode}" in steps
        assert (root / "results" / f"{mode}_k0.json").exists()
        assert (root / "sensitivity" / mode / "report.json").exists()
    assert len(steps) == 15


def test_run_reruns_after_a_binary_change(reference_run, calib_list, tmp_path):
    """The lowbit binary is an input of every step: the same bytes elsewhere skip everything, a
    changed binary redoes the first step (killed as soon as it has; the rest would follow).
    Runs last: it leaves the reference run root half redone."""
    root, _ = reference_run
    # A copy beside the original: lowbit finds the bundled assets relative to its own path.
    exe = os.path.join(os.path.dirname(os.path.abspath(BIN)), "lowbit-test-copy")
    shutil.copy2(BIN, exe)
    try:
        _rerun_with_changed_copy(exe, root, calib_list, tmp_path)
    finally:
        os.remove(exe)


def _rerun_with_changed_copy(exe, root, calib_list, tmp_path):
    r = subprocess.run([exe, *map(str, run_args(root, calib_list))], capture_output=True,
                       text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    times = json.loads((root / "run-times.json").read_text())
    assert [s["status"] for s in times["steps"]] == ["skipped"] * len(times["steps"])
    before = manifests(root)["smoke"]["argv"]  # holds the binary's hash
    with open(exe, "ab") as f:
        f.write(b"\0lowbit-test: another build\0")
    smoke = root / ".lowbit-run" / "smoke.json"

    def smoke_redone():
        try:
            return json.loads(smoke.read_text())["argv"] != before
        except (OSError, ValueError):
            return False

    assert killed_run(run_args(root, calib_list), smoke_redone, tmp_path / "changed.log",
                      exe=exe), "the run finished without redoing the smoke step"
