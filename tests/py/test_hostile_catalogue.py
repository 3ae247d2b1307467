"""A catalogue of bad command lines and bad inputs (issue 14, items 3 and 4).

Each case runs one lowbit command against a shared workspace of real files (the bundled model,
its val set, calibration tensors, reports) and asserts three things: the exit code, a message on
stderr that names what is wrong, and that nothing in the workspace changed or appeared (every
file's size, mtime and SHA-256 and every folder, snapshotted before and after).

Classes: an output that is an input or another output, however spelt (hard link, symlink,
`..`), for every command that writes; node names in exclusion files that the model lacks;
NaN/Inf calibration data; non-finite sensitivity scores; ONNX models with two producers of one
tensor or an unknown opset; `candidates` failing on its evaluation data before writing a model.

Run it against the sanitizer build with LOWBIT_BIN=build-asan/lowbit.
"""
import hashlib
import json
import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest

BIN = os.path.abspath(os.environ.get("LOWBIT_BIN", "build/lowbit"))
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ASSETS = os.path.join(SRC, "assets")
MODEL = os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx")

pytestmark = pytest.mark.skipif(not os.path.exists(BIN) or not os.path.exists(MODEL),
                                reason="lowbit binary or bundled model missing")

USAGE = 2  # InvalidArgument: usage errors and refused inputs
FAIL = 1   # any other failure (I/O, unsupported)


def snapshot(root):
    """Every entry under root: folders by name, files by (size, mtime_ns, sha256), links by
    target."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            p = os.path.join(dirpath, d)
            out[os.path.relpath(p, root)] = ("link", os.readlink(p)) if os.path.islink(p) else "dir"
        for f in filenames:
            p = os.path.join(dirpath, f)
            rel = os.path.relpath(p, root)
            if os.path.islink(p):
                out[rel] = ("link", os.readlink(p))
                continue
            st = os.stat(p)
            with open(p, "rb") as fh:
                digest = hashlib.sha256(fh.read()).hexdigest()
            out[rel] = (st.st_size, st.st_mtime_ns, digest)
    return out


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    return path


def write_json(path, obj):
    return write(path, json.dumps(obj, indent=1))


def lowbit_report(model, scores):
    return {"model": model, "mode": "fp8", "metric": "output-mse",
            "nodes": [{"rank": i + 1, "node": n, "op_type": "Conv", "score": s}
                      for i, (n, s) in enumerate(scores)]}


def results_json(map5095):
    return {"metrics": {"mAP_50_95": map5095, "mAP_50": map5095 + 0.1},
            "latency_ms": {"mean": 5.0, "median": 5.0, "p90": 6.0}}


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """The workspace: every file the cases read. Nothing in it may change."""
    w = tmp_path_factory.mktemp("hostile")
    model = str(w / "model.onnx")
    shutil.copy(MODEL, model)
    os.link(model, w / "hardlink.onnx")
    os.symlink(model, w / "symlink.onnx")
    os.makedirs(w / "sub")

    m = onnx.load(model)
    conv_names = [n.name for n in m.graph.node if n.op_type == "Conv"]
    # Two nodes writing one tensor.
    dup = onnx.load(model)
    first = dup.graph.node[0]
    dup.graph.node.append(onnx.helper.make_node("Identity", [dup.graph.input[0].name],
                                                [first.output[0]], name="second_writer"))
    onnx.save(dup, w / "dup_producer.onnx")
    # An opset lowbit does not know.
    future = onnx.load(model)
    future.opset_import[0].version = 999
    onnx.save(future, w / "opset999.onnx")

    rng = np.random.default_rng(0)
    calib = rng.random((2, 3, 320, 320), dtype=np.float32)
    np.save(w / "calib.npy", calib)
    nan = calib.copy()
    nan[1, 2, 100, 7] = np.nan
    np.save(w / "nan.npy", nan)
    inf = calib.copy()
    inf[0, 0, 0, 5] = np.inf
    np.save(w / "inf.npy", inf)

    # Data: the bundled val set, its annotations copied in.
    ann = str(w / "instances.json")
    shutil.copy(os.path.join(ASSETS, "val", "instances_val.json"), ann)
    images = os.path.join(ASSETS, "val", "images")
    write(w / "ids.txt", "1\n2\n")
    write(w / "broken_gt.json", '{"images": [')

    # A calibration list and its images, inside the workspace.
    os.makedirs(w / "imgs")
    for name in sorted(os.listdir(images))[:2]:
        shutil.copy(os.path.join(images, name), w / "imgs" / name)
    imgs = sorted(os.listdir(w / "imgs"))
    write(w / "list.txt", "".join(f"imgs/{n}\n" for n in imgs))

    # Exclusion lists: good, with a typo, with a name from another model.
    write(w / "exclude.txt", conv_names[0] + "\n")
    write(w / "exclude.md", conv_names[0] + "\n")
    typo = conv_names[1].replace("conv/Conv", "conv/Cnov")
    write(w / "typo.txt", f"# head\n{conv_names[0]}\n{typo}\n")
    write(w / "foreign.txt", "/model.99/cv9/conv/Conv\n")

    # Detections and results.
    write_json(w / "dets.json", [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4],
                                  "score": 0.5}])
    write_json(w / "baseline.json", results_json(0.40))
    write_json(w / "int8.json", results_json(0.39))

    # Sensitivity reports: good, with a null score, with the old 1.8e308 sentinel.
    write_json(w / "report.json", lowbit_report(model, [(n, 1.0 / (i + 1))
                                                        for i, n in enumerate(conv_names[:4])]))
    write_json(w / "null_score.json",
               lowbit_report(model, [(conv_names[0], None), (conv_names[1], 0.5)]))
    write_json(w / "huge_score.json",
               lowbit_report(model, [(conv_names[0], 1.7976931348623157e308),
                                     (conv_names[1], 0.5)]))
    # A report whose name is one schemes writes into its --out-dir.
    write_json(w / "sch" / "scheme_k0.json", lowbit_report(model, [(conv_names[0], 1.0)]))

    # Schemes for candidates: a good one and one naming a node the model lacks.
    write(w / "schemes" / "nodes_to_exclude_k0.txt", "")
    write(w / "schemes" / "nodes_to_exclude_k1.txt", conv_names[0] + "\n")
    write(w / "badschemes" / "nodes_to_exclude_k0.txt", typo + "\n")
    # Ground truth stored where candidates would write its first results file.
    os.makedirs(w / "res")
    shutil.copy(ann, w / "res" / "fp8_k0.json")

    # A stand-in for the bundled assets (LOWBIT_ASSETS) so that the cases about the default model
    # and the default calibration list never point a write at the real ones.
    os.makedirs(w / "assets" / "calib")
    shutil.copy(model, w / "assets" / os.path.basename(MODEL))
    write(w / "assets" / "calib" / "calib100.txt", "".join(f"../../imgs/{n}\n" for n in imgs))

    # An input of smoke stored where smoke writes its summary.
    os.makedirs(w / "smoke")
    shutil.copy(w / "calib.npy", w / "smoke" / "summary.json")

    # A run root holding the calibration list under a name the run writes.
    write(w / "run" / "summary.md", "".join(f"../imgs/{n}\n" for n in imgs))

    return {"w": str(w), "model": model, "ann": ann, "images": images, "typo": typo,
            "conv": conv_names}


def P(ws, rel):
    return os.path.join(ws["w"], rel)


# (id, argv builder, exit code, substrings of stderr)
CASES = [
    # ---- outputs that are inputs (item 3)
    ("quantize-out-is-model",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--out", w["model"]],
     USAGE, ["--out", "MODEL", "same file"]),
    ("quantize-out-is-hardlink",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--out",
                P(w, "hardlink.onnx")],
     USAGE, ["--out", "hardlink.onnx", "MODEL"]),
    ("quantize-out-is-symlink",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--out",
                P(w, "symlink.onnx")],
     USAGE, ["--out", "symlink.onnx", "MODEL"]),
    ("quantize-out-other-spelling",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--out",
                P(w, "sub/../model.onnx")],
     USAGE, ["--out", "MODEL"]),
    ("quantize-onnx-path-spelling",
     lambda w: ["quantize", "--onnx_path", w["model"], "--calibration_data_path",
                P(w, "calib.npy"), "--output_path", w["model"]],
     USAGE, ["--out", "MODEL"]),
    ("quantize-out-is-calib",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--out", P(w, "calib.npy")],
     USAGE, ["--out", "--calib"]),
    ("quantize-ranges-is-calib",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--ranges",
                P(w, "calib.npy"), "--out", P(w, "new.onnx")],
     USAGE, ["--ranges", "--calib"]),
    ("quantize-out-is-exclusion-file",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--exclude-nodes-file",
                P(w, "exclude.txt"), "--out", P(w, "exclude.txt")],
     USAGE, ["--out", "--exclude-nodes-file"]),
    ("quantize-out-is-explain-json",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--out", P(w, "x.onnx"),
                "--explain-json", P(w, "x.onnx")],
     USAGE, ["--out", "--explain-json"]),
    ("quantize-calib-list-out-is-list",
     lambda w: ["quantize", w["model"], "--calib-list", P(w, "list.txt"), "--out",
                P(w, "list.txt")],
     USAGE, ["--out", "--calib-list"]),
    ("calib-out-is-list",
     lambda w: ["calib", "--list", P(w, "list.txt"), "--out", P(w, "list.txt")],
     USAGE, ["--out", "--list"]),
    ("calib-out-is-an-image",
     lambda w: ["calib", "--list", P(w, "list.txt"), "--out",
                P(w, "imgs/" + sorted(os.listdir(P(w, "imgs")))[0])],
     USAGE, ["--out", "image"]),
    ("calib-images-out-is-an-image",
     lambda w: ["calib", "--images", P(w, "imgs"), "--out",
                P(w, "imgs/" + sorted(os.listdir(P(w, "imgs")))[1])],
     USAGE, ["--out", "image"]),
    ("eval-out-is-ann",
     lambda w: ["eval", w["model"], "--ann", w["ann"], "--images", w["images"], "--out",
                w["ann"]],
     USAGE, ["--out", "--ann"]),
    ("eval-out-is-model",
     lambda w: ["eval", w["model"], "--ann", w["ann"], "--images", w["images"], "--out",
                P(w, "symlink.onnx")],
     USAGE, ["--out", "MODEL"]),
    ("eval-out-is-save-detections",
     lambda w: ["eval", w["model"], "--ann", w["ann"], "--images", w["images"], "--out",
                P(w, "m.json"), "--save-detections", P(w, "sub/../m.json")],
     USAGE, ["--out", "--save-detections"]),
    ("eval-detections-is-ids-list",
     lambda w: ["eval", w["model"], "--ann", w["ann"], "--images", w["images"],
                "--image-ids-list", P(w, "ids.txt"), "--save-detections", P(w, "ids.txt")],
     USAGE, ["--save-detections", "--image-ids-list"]),
    ("cocoeval-json-is-dt",
     lambda w: ["cocoeval", "--gt", w["ann"], "--dt", P(w, "dets.json"), "--json",
                P(w, "dets.json")],
     USAGE, ["--json", "--dt"]),
    ("cocoeval-json-is-gt",
     lambda w: ["cocoeval", "--gt", w["ann"], "--dt", P(w, "dets.json"), "--json", w["ann"]],
     USAGE, ["--json", "--gt"]),
    ("compare-out-is-result",
     lambda w: ["compare", P(w, "baseline.json"), P(w, "int8.json"), "--out",
                P(w, "int8.json")],
     USAGE, ["--out", "RESULTS"]),
    ("compare-html-is-result",
     lambda w: ["compare", P(w, "baseline.json"), P(w, "int8.json"), "--html",
                P(w, "baseline.json")],
     USAGE, ["--html", "RESULTS"]),
    ("compare-out-is-sensitivity",
     lambda w: ["compare", P(w, "baseline.json"), "--sensitivity", P(w, "report.json"),
                "--out", P(w, "report.json")],
     USAGE, ["--out", "--sensitivity"]),
    ("compare-out-is-html",
     lambda w: ["compare", P(w, "baseline.json"), "--out", P(w, "r.md"), "--html",
                P(w, "r.md")],
     USAGE, ["--out", "--html"]),
    ("smoke-summary-is-input",
     lambda w: ["smoke", w["model"], "--input", P(w, "smoke/summary.json"), "--out",
                P(w, "smoke")],
     USAGE, ["--out", "--input", "summary.json"]),
    ("head-exclude-out-is-model",
     lambda w: ["head-exclude", w["model"], "--out", P(w, "hardlink.onnx")],
     USAGE, ["--out", "MODEL"]),
    ("schemes-out-dir-holds-report",
     lambda w: ["schemes", "--report", P(w, "sch/scheme_k0.json"), "--ks", "0", "--out-dir",
                P(w, "sch"), "--model", w["model"]],
     USAGE, ["--out-dir", "--report"]),
    ("sensitivity-out-is-calib",
     lambda w: ["sensitivity", w["model"], "--calib", P(w, "calib.npy"), "--out",
                P(w, "calib.npy")],
     USAGE, ["--out", "--calib"]),
    ("sensitivity-md-beside-out-is-exclusion-file",
     lambda w: ["sensitivity", w["model"], "--calib", P(w, "calib.npy"),
                "--exclude-nodes-file", P(w, "exclude.md"), "--out", P(w, "exclude.json")],
     USAGE, ["report.md", "--exclude-nodes-file"]),
    ("sensitivity-default-model-is-input",
     lambda w: ["sensitivity", "--calib", P(w, "calib.npy"), "--out",
                P(w, "assets/" + os.path.basename(MODEL))],
     USAGE, ["--out", "MODEL"]),
    ("sensitivity-default-calib-list-is-input",
     lambda w: ["sensitivity", w["model"], "--out", P(w, "assets/calib/calib100.txt")],
     USAGE, ["--out", "--calib-list"]),
    ("head-exclude-default-model-is-input",
     lambda w: ["head-exclude", "--out", P(w, "assets/" + os.path.basename(MODEL))],
     USAGE, ["--out", "MODEL"]),
    ("run-writes-over-calib-list",
     lambda w: ["run", "--root", P(w, "run"), "--model", w["model"], "--calib-list",
                P(w, "run/summary.md"), "--ann", w["ann"], "--images", w["images"]],
     USAGE, ["--root", "--calib-list", "summary.md"]),
    ("candidates-results-over-ann",
     lambda w: ["candidates", w["model"], "--schemes", P(w, "schemes"), "--ks", "0",
                "--calib", P(w, "calib.npy"), "--out-dir", P(w, "cand"), "--results-dir",
                P(w, "res"), "--ann", P(w, "res/fp8_k0.json"), "--images", w["images"]],
     USAGE, ["--results-dir", "--ann"]),
    # ---- exclusion lists naming nodes the model lacks (item 4)
    ("quantize-exclusion-typo",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--exclude-nodes-file",
                P(w, "typo.txt"), "--out", P(w, "new.onnx")],
     USAGE, ["typo.txt", "not a node", "did you mean", "head-exclude"]),
    ("quantize-exclusion-foreign-model",
     lambda w: ["quantize", w["model"], "--calib", P(w, "calib.npy"), "--exclude-nodes-file",
                P(w, "foreign.txt"), "--out", P(w, "new.onnx")],
     USAGE, ["foreign.txt", "/model.99/cv9/conv/Conv"]),
    ("quantize-explain-exclusion-typo",
     lambda w: ["quantize", w["model"], "--explain", "--exclude-nodes-file", P(w, "typo.txt")],
     USAGE, ["typo.txt", "did you mean"]),
    ("sensitivity-exclusion-typo",
     lambda w: ["sensitivity", w["model"], "--calib", P(w, "calib.npy"), "--exclude-nodes-file",
                P(w, "typo.txt"), "--out", P(w, "s.json")],
     USAGE, ["typo.txt", "did you mean"]),
    ("candidates-scheme-typo-writes-no-model",
     lambda w: ["candidates", w["model"], "--schemes", P(w, "badschemes"), "--calib",
                P(w, "calib.npy"), "--out-dir", P(w, "cand"), "--ann", w["ann"], "--images",
                w["images"]],
     USAGE, ["nodes_to_exclude_k0.txt", "did you mean"]),
    # ---- calibration data and sensitivity scores (item 4)
    ("quantize-nan-calibration",
     lambda w: ["quantize", w["model"], "--calib", P(w, "nan.npy"), "--out", P(w, "new.onnx")],
     USAGE, ["nan.npy", "sample 1", "NaN"]),
    ("quantize-inf-calibration",
     lambda w: ["quantize", w["model"], "--calib", P(w, "inf.npy"), "--out", P(w, "new.onnx"),
                "--ranges", P(w, "ranges.json")],
     USAGE, ["inf.npy", "sample 0", "element 5"]),
    ("sensitivity-nan-calibration",
     lambda w: ["sensitivity", w["model"], "--calib", P(w, "nan.npy"), "--images", "2",
                "--out", P(w, "s.json")],
     USAGE, ["nan.npy", "sample 1"]),
    ("candidates-nan-calibration",
     lambda w: ["candidates", w["model"], "--schemes", P(w, "schemes"), "--calib",
                P(w, "nan.npy"), "--out-dir", P(w, "cand"), "--ann", w["ann"], "--images",
                w["images"]],
     USAGE, ["nan.npy", "sample 1"]),
    ("schemes-null-score",
     lambda w: ["schemes", "--report", P(w, "null_score.json"), "--out-dir", P(w, "out")],
     USAGE, ["null_score.json", "null", "not a finite"]),
    ("schemes-sentinel-score",
     lambda w: ["schemes", "--report", P(w, "huge_score.json"), "--out-dir", P(w, "out")],
     USAGE, ["huge_score.json", "NaN or infinite"]),
    # ---- models (item 4)
    ("info-two-producers",
     lambda w: ["info", P(w, "dup_producer.onnx")],
     USAGE, ["dup_producer.onnx", "two producers", "second_writer"]),
    ("quantize-two-producers",
     lambda w: ["quantize", P(w, "dup_producer.onnx"), "--calib", P(w, "calib.npy"), "--out",
                P(w, "new.onnx")],
     USAGE, ["dup_producer.onnx", "two producers"]),
    ("quantize-opset-999",
     lambda w: ["quantize", P(w, "opset999.onnx"), "--calib", P(w, "calib.npy"), "--out",
                P(w, "new.onnx")],
     FAIL, ["opset999.onnx", "opset 999", "not supported"]),
    ("eval-opset-999",
     lambda w: ["eval", P(w, "opset999.onnx"), "--ann", w["ann"], "--images", w["images"],
                "--out", P(w, "m.json")],
     FAIL, ["opset999.onnx", "opset 999"]),
    # ---- candidates checks its evaluation data before writing any model (item 4)
    ("candidates-broken-gt-writes-no-model",
     lambda w: ["candidates", w["model"], "--schemes", P(w, "schemes"), "--calib",
                P(w, "calib.npy"), "--out-dir", P(w, "cand"), "--ann", P(w, "broken_gt.json"),
                "--images", w["images"]],
     USAGE, ["broken_gt.json"]),
    ("candidates-bad-ids-list-writes-no-model",
     lambda w: ["candidates", w["model"], "--schemes", P(w, "schemes"), "--calib",
                P(w, "calib.npy"), "--out-dir", P(w, "cand"), "--ann", w["ann"], "--images",
                w["images"], "--image-ids-list", P(w, "list.txt")],
     USAGE, ["list.txt", "image id"]),
    ("candidates-bad-head-writes-no-model",
     lambda w: ["candidates", w["model"], "--schemes", P(w, "schemes"), "--calib",
                P(w, "calib.npy"), "--out-dir", P(w, "cand"), "--ann", w["ann"], "--images",
                w["images"], "--head", "sideways"],
     USAGE, ["sideways"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hostile(ws, case):
    _, argv, code, needles = case
    args = [str(a) for a in argv(ws)]
    outside = [MODEL, os.path.join(ASSETS, "calib", "calib100.txt")]
    before = snapshot(ws["w"])
    before_outside = [os.stat(p).st_mtime_ns for p in outside]
    env = dict(os.environ, LOWBIT_ASSETS=P(ws, "assets"))
    r = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=600,
                       cwd=ws["w"], env=env)
    assert r.returncode == code, f"lowbit {' '.join(args)} -> {r.returncode}\n{r.stderr}"
    assert f"lowbit {args[0]}: error: " in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, f"{n!r} not in:\n{r.stderr}"
    assert "Sanitizer" not in r.stderr and "runtime error" not in r.stderr, r.stderr
    after = snapshot(ws["w"])
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    assert not changed, f"files changed or appeared: {changed}"
    assert [os.stat(p).st_mtime_ns for p in outside] == before_outside


def test_catalogue_is_large_enough():
    assert len(CASES) >= 40


def test_constant_calibration_is_a_named_warning(ws, tmp_path):
    """All-zero calibration data is harmless enough to quantize with, but every constant sample
    is named on stderr."""
    zeros = tmp_path / "zeros.npy"
    np.save(zeros, np.zeros((2, 3, 320, 320), dtype=np.float32))
    r = subprocess.run([BIN, "quantize", ws["model"], "--calib", str(zeros), "--out",
                        str(tmp_path / "q.onnx")], capture_output=True, text=True)
    lines = r.stderr.splitlines()
    for k in (0, 1):
        assert any("zeros.npy" in ln and f"sample {k} is constant" in ln for ln in lines), r.stderr
    assert "tensor 'images' is constant" in r.stderr, r.stderr


def test_good_exclusion_file_still_works(ws, tmp_path):
    r = subprocess.run([BIN, "quantize", ws["model"], "--explain", "--exclude-nodes-file",
                        P(ws, "exclude.txt")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert ws["conv"][0] in r.stdout
