"""`lowbit schemes` and `lowbit compare` end to end, on synthetic reports and results files.

schemes: a lowbit per-node report and a seed Torch layer-sensitivity report (research/seed-spec.md
§9.4, with detection-head layers) against the bundled model; checks every output file of §10.3.
compare: hand-made results/*.json (the `eval --out` schema); checks the table's numbers, the
recommendation, that report.html is self-contained, and the error exits.
"""
import json
import os
import subprocess

import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
MODEL = os.path.join(SRC, "assets", "shapes-yolov10m-w0p1875-raw.onnx")

pytestmark = pytest.mark.skipif(not LOWBIT or not os.path.exists(LOWBIT),
                                reason="LOWBIT_BIN not set")


def lowbit(*args, cwd=None):
    return subprocess.run([LOWBIT, *map(str, args)], capture_output=True, text=True, cwd=cwd)


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
    return str(path)


def read(path):
    with open(path) as f:
        return f.read()


# ---------------------------------------------------------------------------------------------
# schemes

SCHEME_KEYS = ["source_report", "onnx_path", "k", "excluded_layers", "excluded_onnx_nodes",
               "missing_onnx_nodes", "missing_layers", "materialization"]


def lowbit_report(nodes):
    return {"model": MODEL, "mode": "fp8", "metric": "output-mse", "all_but_one": False,
            "nodes": [{"rank": i + 1, "node": n, "op_type": "Conv", "scope": "/x/",
                       "macs": 1000 - i, "macs_share": 0.01, "score": 1.0 / (i + 1),
                       "metrics": {"output-mse": 1.0 / (i + 1)}} for i, n in enumerate(nodes)]}


def test_schemes_from_lowbit_report(tmp_path):
    nodes = ["/model.23/one2one_cv2.0/one2one_cv2.0.2/Conv", "/model.0/conv/Conv",
             "/not/in/the/model/Conv", "/model.8/m.0/cv1/cv1.0/conv/Conv", "/model.2/cv1/conv/Conv"]
    report = write_json(tmp_path / "sens.json", lowbit_report(nodes))
    out = tmp_path / "schemes"
    r = lowbit("schemes", "--report", report, "--ks", 0, 3, 2, "--out-dir", out, "--model", MODEL)
    assert r.returncode == 0, r.stderr
    assert sorted(os.listdir(out)) == sorted(
        ["candidates.md", "nodes_to_exclude_k0.txt", "nodes_to_exclude_k2.txt",
         "nodes_to_exclude_k3.txt", "scheme_k0.json", "scheme_k2.json", "scheme_k3.json"])
    assert os.path.getsize(out / "nodes_to_exclude_k0.txt") == 0
    assert read(out / "nodes_to_exclude_k2.txt") == "\n".join(nodes[:2]) + "\n"
    # K=3 passes over the name the model lacks and takes the next one.
    assert read(out / "nodes_to_exclude_k3.txt") == "\n".join(nodes[:2] + nodes[3:4]) + "\n"
    s3 = json.loads(read(out / "scheme_k3.json"))
    assert list(s3) == SCHEME_KEYS
    assert s3["k"] == 3 and s3["onnx_path"] == MODEL and s3["source_report"] == report
    assert s3["excluded_onnx_nodes"] == nodes[:2] + nodes[3:4]
    assert s3["missing_onnx_nodes"] == ["/not/in/the/model/Conv"]
    assert s3["missing_layers"] == []
    assert s3["materialization"]["quantize_mode"] == "fp8"
    assert "/not/in/the/model/Conv" in r.stderr and "warning" in r.stderr
    s0 = json.loads(read(out / "scheme_k0.json"))
    assert s0["excluded_onnx_nodes"] == [] and s0["k"] == 0
    md = read(out / "candidates.md")
    assert md.startswith("# YOLOv10m sensitivity \u2192 candidate scheme mapping")
    assert "| 1 | `/model.23/one2one_cv2.0/one2one_cv2.0.2/Conv` | Conv |" in md


def test_schemes_lowbit_report_uses_its_model(tmp_path):
    report = write_json(tmp_path / "sens.json", lowbit_report(["/model.0/conv/Conv", "/nope"]))
    r = lowbit("schemes", "--report", report, "--ks", 2, "--out-dir", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    s = json.loads(read(tmp_path / "s" / "scheme_k2.json"))
    assert s["excluded_onnx_nodes"] == ["/model.0/conv/Conv"]
    assert s["missing_onnx_nodes"] == ["/nope"]


def torch_report(layers):
    rows = [{"layer": l, "num_bits": 8, "sensitivity": 10.0 - i, "size_cost": 100}
            for i, l in enumerate(layers)]
    return {"scheme": {"name": "yolov10m_wfp8_afp16_per_layer", "auto_quantize_method": "gradient"},
            "model": {"id": "models/yolo10/checkpoints/yolov10m.pt"},
            "quantization": {"quant_pair": {"weight": "fp8", "activation": "fp16"}},
            "layer_sensitivity": rows}


def test_schemes_from_seed_torch_report_maps_head_convs(tmp_path):
    layers = ["model.23.one2one_cv3.0.0.0.conv",  # nested head conv (seed: missing)
              "model.23.cv2.0.0.conv",            # one2many branch: not in the export
              "model.23.one2one_cv2.1.2",         # plain nn.Conv2d, no .conv suffix
              "model.8.m.0.cv1.0.conv",
              "model.23.one2one_cv2.0.0.conv",
              "model.0.conv"]
    report = write_json(tmp_path / "layer-sensitivity-report.json", torch_report(layers))
    out = tmp_path / "schemes"
    r = lowbit("schemes", "--report", report, "--ks", 0, 4, "--out-dir", out, "--model", MODEL,
               "--top-n-md", 3)
    assert r.returncode == 0, r.stderr
    expected = ["/model.23/one2one_cv3.0/one2one_cv3.0.0/one2one_cv3.0.0.0/conv/Conv",
                "/model.23/one2one_cv2.1/one2one_cv2.1.2/Conv",
                "/model.8/m.0/cv1/cv1.0/conv/Conv",
                "/model.23/one2one_cv2.0/one2one_cv2.0.0/conv/Conv"]
    assert read(out / "nodes_to_exclude_k4.txt") == "\n".join(expected) + "\n"
    assert os.path.getsize(out / "nodes_to_exclude_k0.txt") == 0
    s = json.loads(read(out / "scheme_k4.json"))
    assert list(s) == SCHEME_KEYS
    assert s["excluded_layers"] == [layers[0], layers[2], layers[3], layers[4]]
    assert s["excluded_onnx_nodes"] == expected
    assert s["missing_layers"] == ["model.23.cv2.0.0.conv"]
    assert "model.23.cv2.0.0.conv" in r.stderr and "one2many" in r.stderr
    md = read(out / "candidates.md")
    assert "| Rank | Torch layer | Sensitivity | ONNX node |" in md
    assert "| 1 | `model.23.one2one_cv3.0.0.0.conv` | 10.000000 | " \
           "`/model.23/one2one_cv3.0/one2one_cv3.0.0/one2one_cv3.0.0.0/conv/Conv` |" in md
    assert "| 3 | `model.23.one2one_cv2.1.2` |" in md and "| 4 | `" not in md  # --top-n-md 3


def test_schemes_errors(tmp_path):
    report = write_json(tmp_path / "t.json", torch_report(["model.0.conv"]))
    r = lowbit("schemes", "--report", report, "--out-dir", tmp_path / "a")
    assert r.returncode != 0 and "--model" in r.stderr
    assert not os.path.exists(tmp_path / "a")
    bad = write_json(tmp_path / "bad.json", {"nodes": [{"node": "/a/Conv"}]})
    r = lowbit("schemes", "--report", bad, "--out-dir", tmp_path / "b")
    assert r.returncode != 0 and "bad.json" in r.stderr and "nodes[0].score" in r.stderr
    assert not os.path.exists(tmp_path / "b")
    neither = write_json(tmp_path / "neither.json", {"rows": []})
    r = lowbit("schemes", "--report", neither, "--out-dir", tmp_path / "c")
    assert r.returncode != 0 and "neither.json" in r.stderr and "layer_sensitivity" in r.stderr
    (tmp_path / "broken.json").write_text("{\"nodes\": [")
    r = lowbit("schemes", "--report", tmp_path / "broken.json", "--out-dir", tmp_path / "d")
    assert r.returncode != 0 and "broken.json" in r.stderr and "JSON" in r.stderr


# ---------------------------------------------------------------------------------------------
# compare


def results(onnx, m5095, m50, mean, p90, variant=None, **params):
    j = {"onnx_path": onnx, "data_root": "", "instances": "assets/val/instances_val.json",
         "images_dir": "assets/val/images", "providers": ["CPUExecutionProvider"], "imgsz": 320,
         "max_images": 100, "warmup_runs": 1, "skip_latency": 1, "conf": 0.001, "iou": 0.7,
         "max_det": 300, "pre_nms_topk": 30000,
         "metrics": {"mAP_50_95": m5095, "mAP_50": m50, "mAP_75": 0.5, "mAP_small": 0.1,
                     "mAP_medium": 0.2, "mAP_large": 0.3, "num_images": 100,
                     "num_detections": 1234},
         "latency": {"mean_ms": mean, "median_ms": mean, "p90_ms": p90,
                     "throughput_fps": 1000.0 / mean}}
    j.update(params)
    if variant:
        j["variant"] = variant
    return j


def make_results(d):
    d.mkdir(parents=True, exist_ok=True)
    files = [
        write_json(d / "baseline.json", results(MODEL, 0.70321, 0.90111, 40.0, 44.5)),
        write_json(d / "int8.json", results("onnx/int8.onnx", 0.6512, 0.86, 18.25, 20.0,
                                            {"name": "int8", "mode": "int8", "k": 0,
                                             "excluded_nodes": 0, "quantized_nodes": 150,
                                             "calibration_method": "mse",
                                             "model_bytes": 1500000})),
        write_json(d / "fp8_k5.json", results("onnx/fp8-k5.onnx", 0.6987, 0.8999, 25.5, 27.75,
                                              {"name": "fp8_k5", "mode": "fp8", "k": 5,
                                               "excluded_nodes": 5, "quantized_nodes": 140,
                                               "calibration_method": "mse",
                                               "model_bytes": 2500000})),
        write_json(d / "fp8_k10.json", results("onnx/fp8-k10.onnx", 0.7001, 0.9001, 27.0, 29.0,
                                               {"name": "fp8_k10", "mode": "fp8", "k": 10,
                                                "excluded_nodes": 10, "quantized_nodes": 135,
                                                "calibration_method": "mse",
                                                "model_bytes": 2600000}, imgsz=640)),
    ]
    return files


def table_rows(text):
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 9 and cells[0] not in ("variant", "---"):
            rows[cells[0]] = cells
    return rows


def test_compare_table_recommendation_and_html(tmp_path):
    files = make_results(tmp_path / "results")
    sens = write_json(tmp_path / "sens.json",
                      lowbit_report([f"/model.{i}/conv/Conv" for i in range(40)]))
    summary, html = tmp_path / "summary.md", tmp_path / "report.html"
    r = lowbit("compare", *files, "--out", summary, "--html", html, "--sensitivity", sens)
    assert r.returncode == 0, r.stderr
    md = read(summary)
    rows = table_rows(md)
    assert list(rows) == ["baseline", "fp8_k5", "fp8_k10", "int8"]
    assert rows == table_rows(r.stdout)
    b = rows["baseline"]
    assert b[1:4] == ["0.7032", "0.9011", "-"] and b[4:6] == ["40.000", "44.500"]
    assert b[6] == f"{os.path.getsize(MODEL) / 1e6:.2f}"  # size from the ONNX file
    assert b[7] == "0"  # quantized nodes counted in the float model
    assert b[8] == MODEL
    assert rows["fp8_k5"][1:9] == ["0.6987", "0.8999", "0.0045", "25.500", "27.750", "2.50",
                                   "140", "onnx/fp8-k5.onnx"]
    assert rows["int8"][3] == "0.0520"
    # int8 is the fastest but drops 0.052 > 0.01; fp8_k5 is the fastest within the tolerance.
    assert "**Recommended: `fp8_k5`**" in md
    assert "Rule:" in md and "0.0100" in md
    assert "recommended: fp8_k5" in r.stdout
    assert "## Datasets" in md and "- max_images: 100" in md
    assert "- imgsz: differs: 320 (baseline, fp8_k5, int8); 640 (fp8_k10)" in md
    assert "| fp8_k10 | fp8 | 10 | 10 | mse |" in md

    h = read(html)
    assert "<svg" in h and "http" not in h and "src=" not in h and "<script" not in h
    assert "<link" not in h and "@import" not in h and "url(" not in h
    assert h.count("<svg") == 2  # the scatter and one sensitivity chart
    assert "/model.29/conv/Conv" in h and "/model.30/conv/Conv" not in h  # top 30 bars
    assert "Pareto front" in h and "fp8_k5" in h

    # A looser tolerance recommends int8.
    r = lowbit("compare", *files, "--max-drop", 0.06)
    assert r.returncode == 0 and "recommended: int8" in r.stdout


def test_compare_baseline_option_and_no_baseline(tmp_path):
    files = make_results(tmp_path / "results")
    others = [f for f in files if os.path.basename(f) != "baseline.json"]
    r = lowbit("compare", *others, "--baseline", files[0])
    assert r.returncode == 0, r.stderr
    rows = table_rows(r.stdout)
    assert list(rows)[0] == "baseline" and rows["fp8_k5"][3] == "0.0045"
    r = lowbit("compare", *others, "--baseline", "fp8_k10")
    assert r.returncode == 0, r.stderr
    rows = table_rows(r.stdout)
    assert list(rows)[0] == "fp8_k10" and rows["int8"][3] == f"{0.7001 - 0.6512:.4f}"
    r = lowbit("compare", *others)
    assert r.returncode == 0, r.stderr
    assert table_rows(r.stdout)["int8"][3] == "-"
    assert "recommended: fp8_k10" in r.stdout  # most accurate when the drop is unknown


def test_compare_errors_write_nothing(tmp_path):
    files = make_results(tmp_path / "results")
    broken = results(MODEL, 0.5, 0.6, 1.0, 1.0)
    del broken["metrics"]["mAP_50"]
    bad = write_json(tmp_path / "results" / "broken.json", broken)
    summary, html = tmp_path / "summary.md", tmp_path / "report.html"
    r = lowbit("compare", *files, bad, "--out", summary, "--html", html)
    assert r.returncode != 0
    assert "broken.json" in r.stderr and "metrics.mAP_50" in r.stderr
    assert not summary.exists() and not html.exists()

    wrong = results(MODEL, 0.5, 0.6, 1.0, 1.0)
    wrong["latency"]["p90_ms"] = "fast"
    bad = write_json(tmp_path / "wrong.json", wrong)
    r = lowbit("compare", bad, "--out", summary)
    assert r.returncode != 0 and "wrong.json" in r.stderr and "latency.p90_ms" in r.stderr

    (tmp_path / "trunc.json").write_text("{\"onnx_path\": ")
    r = lowbit("compare", tmp_path / "trunc.json", "--out", summary)
    assert r.returncode != 0 and "trunc.json" in r.stderr

    r = lowbit("compare", tmp_path / "missing.json", "--out", summary)
    assert r.returncode != 0 and "missing.json" in r.stderr

    r = lowbit("compare", *files, "--baseline", "nope")
    assert r.returncode != 0 and "nope" in r.stderr

    bad_sens = write_json(tmp_path / "sens.json", {"nodes": [{"score": 1}]})
    r = lowbit("compare", *files, "--html", html, "--sensitivity", bad_sens)
    assert r.returncode != 0 and "sens.json" in r.stderr and "nodes[0].node" in r.stderr
    assert not summary.exists() and not html.exists()
