#!/usr/bin/env python3
"""Exports YOLOv10m-topology ONNX fixtures with seeded random weights (Ultralytics 8.3.x).

For each requested width it writes two models, both opset 13, input images [1,3,640,640]:
  <stem>.onnx      Ultralytics' default end-to-end export, output0 [1,300,6]
  <stem>-raw.onnx  the same graph cut at /model.23/Concat_3_output_0, [1,144,8400]

  --small  width 0.1875 -> tests/models/yolov10m-w0p1875{,-raw}.onnx (about 5 MB each, committed)
  --full   width 0.75 (real yolov10m) -> tests/models/full/yolov10m{,-raw}.onnx (about 60 MB each,
           git-ignored, generated on demand) and the node lists
           tests/models/yolov10m-full{,-raw}.nodes.txt (committed)

Run with .venv-train/bin/python (tools/setup_train.sh). The same --seed gives byte-identical
files. Node names, op types and connectivity do not depend on the width (only depthwise group
attributes and constant values do), which is why the small models stand in for the real one.
"""

import argparse
import hashlib
import json
from pathlib import Path

import yolo_fixture_common as common  # sets the offline environment first

IMGSZ = 640


def export_width(width, out_dir, stem, seed, work):
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import init_seeds
    init_seeds(seed)
    yaml_path = common.write_model_yaml(width, work)
    yolo = YOLO(str(yaml_path))
    common.randomize_bn_and_biases(yolo.model, seed)
    e2e = common.export_onnx(yolo, IMGSZ, Path(out_dir) / f"{stem}.onnx")
    raw = common.cut_raw(e2e, Path(out_dir) / f"{stem}-raw.onnx")
    for p in (e2e, raw):
        n = common.identity_count(p)
        if n:
            raise SystemExit(f"{p}: {n} Identity nodes (deduplicated initializers)")
    return e2e, raw


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--small", action="store_true", help="width 0.1875 pair (committed)")
    ap.add_argument("--full", action="store_true", help="full-width pair + node lists")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--models-dir", type=Path, default=common.REPO_ROOT / "tests" / "models")
    ap.add_argument("--work", type=Path, default=None,
                    help="scratch folder for the model yaml (default: a temporary folder)")
    ap.add_argument("--report", type=Path, help="also write the JSON report here")
    args = ap.parse_args()
    if not (args.small or args.full):
        ap.error("pass --small and/or --full")
    common.check_versions()

    import tempfile
    with tempfile.TemporaryDirectory(prefix="lowbit-export-") as tmp:
        work = args.work or Path(tmp)
        report = {"versions": common.versions(), "seed": args.seed, "imgsz": IMGSZ,
                  "opset": common.OPSET, "models": {}}
        jobs = []
        if args.small:
            jobs.append((0.1875, args.models_dir, "yolov10m-w0p1875"))
        if args.full:
            jobs.append((0.75, args.models_dir / "full", "yolov10m"))
        for width, out_dir, stem in jobs:
            e2e, raw = export_width(width, out_dir, stem, args.seed, work)
            for p in (e2e, raw):
                info = common.describe(p)
                info["sha256"] = sha256(p)
                report["models"][str(p.relative_to(common.REPO_ROOT)
                                     if p.resolve().is_relative_to(common.REPO_ROOT) else p)] = info
            if width == 0.75:
                for p, name in ((e2e, "yolov10m-full.nodes.txt"),
                                (raw, "yolov10m-full-raw.nodes.txt")):
                    lines = common.node_list(p)
                    (args.models_dir / name).write_text("".join(l + "\n" for l in lines))
        text = json.dumps(report, indent=1) + "\n"
        if args.report:
            args.report.write_text(text)
        print(text, end="")


if __name__ == "__main__":
    main()
