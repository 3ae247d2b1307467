"""bench/zoo_bench.py: its agreement rules for TopK heads, and one end-to-end run on zoo-tiny.

- with_topk_inputs exposes the first TopK's input and the Sigmoid inputs before it, not tensors
  downstream of a TopK (those depend on how ties were broken);
- agreement: a TopK head whose rows tie passes when only the tied rows' order differs, and fails
  when an untied row's box differs; elementwise outputs fail beyond 1e-4 of their scale;
- the bench on two zoo-tiny models (agreement only) exits 0 and writes its JSON.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SRC = Path(os.environ.get("LOWBIT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
LOWBIT = os.environ.get("LOWBIT_BIN", "build/lowbit")
sys.path.insert(0, str(SRC / "bench"))
import zoo_bench  # noqa: E402


def test_with_topk_inputs_picks_dense_tensors(tmp_path):
    k = numpy_helper.from_array(np.array([2], np.int64), "k")
    nodes = [helper.make_node("Sigmoid", ["x"], ["s"]),
             helper.make_node("TopK", ["s", "k"], ["v1", "i1"], axis=1),
             helper.make_node("Neg", ["v1"], ["n1"]),
             helper.make_node("TopK", ["n1", "k"], ["v2", "i2"], axis=1)]
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 5])],
                          [helper.make_tensor_value_info("v2", TensorProto.FLOAT, [1, 2])], [k])
    src = tmp_path / "m.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(src))
    topk, logits = zoo_bench.with_topk_inputs(src, tmp_path / "out.onnx")
    assert topk == ["s"] and logits == ["x"]
    outs = [o.name for o in onnx.load(str(tmp_path / "out.onnx")).graph.output]
    assert outs == ["v2", "s", "x"]


def test_agreement_rules():
    rows = np.array([[[0, 0, 10, 10, 0.9, 1], [5, 5, 20, 20, 0.5, 2], [1, 1, 2, 2, 0.5, 3]]],
                    np.float32)
    swapped = rows[:, [0, 2, 1]]  # the tied rows (score 0.5) in the other order
    logits = np.array([[1.0, 2.0]], np.float32)
    ok = zoo_bench.agreement([swapped, logits], [rows, logits], "end2end", 1, 0)
    assert ok["max_rel_err"] < 1e-6 and ok["rows_matched"] == 1
    moved = rows.copy()
    moved[0, 0, 2] = 12  # the untied row's box
    bad = zoo_bench.agreement([moved, logits], [rows, logits], "end2end", 1, 0)
    assert bad["max_rel_err"] > 1e-2
    off = logits * (1 + 1e-3)
    assert zoo_bench.agreement([rows, off], [rows, logits], "end2end", 1, 0)["max_rel_err"] > 1e-4
    assert zoo_bench.agreement([logits], [logits * 1.001], None, 1)["max_rel_err"] > 1e-4
    assert zoo_bench.agreement([logits], [logits, logits], None, 1)["max_rel_err"] == float("inf")


def test_bench_runs_on_zoo_tiny(tmp_path):
    out = tmp_path / "zoo.json"
    r = subprocess.run([sys.executable, str(SRC / "bench" / "zoo_bench.py"), "--zoo",
                        str(SRC / "tests" / "models" / "zoo-tiny"), "--lowbit", LOWBIT,
                        "--only", "unet-tiny", "mobilenetv3-small-tiny", "--no-timing",
                        "--json", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(out.read_text())["results"]
    assert sorted(x["model"] for x in res) == ["mobilenetv3-small-tiny", "unet-tiny"]
    assert all(x["max_rel_err"] <= 1e-4 for x in res)
    assert "| unet-tiny | segmenter |" in r.stdout
