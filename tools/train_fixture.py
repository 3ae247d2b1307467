#!/usr/bin/env python3
"""Trains lowbit's test model (YOLOv10m topology, reduced width) on the synthetic shapes set
and exports it to ONNX.

Run with .venv-train/bin/python (tools/setup_train.sh). Steps, each a subcommand ("all" runs
train, then export, then validate):

  train     Ultralytics training on CPU at imgsz 320, fixed seeds, workers 0, amp off, plots off.
  export    best.pt -> <name>.onnx (end-to-end, output0 [1,300,6]) and <name>-raw.onnx (cut at
            /model.23/Concat_3_output_0, [1, 64+nc, 2100]), opset 13, imgsz 320; then compares the
            op-type + node-name lists with the full-width yolov10m lists in tests/models/.
  validate  Ultralytics' own validator on the val split (imgsz 320), results into a JSON file.

The bundled model was trained in two stages, the second started from the first's best.pt with a
fresh schedule (--init); assets/MODEL_CARD.md has the exact commands.
"""

import argparse
import json
import time
from pathlib import Path

import yolo_fixture_common as common  # sets the offline environment first

IMGSZ = 320


def cmd_train(args):
    from ultralytics import YOLO
    from ultralytics.utils.torch_utils import init_seeds
    common.check_versions()
    init_seeds(args.seed)
    if args.init:
        # A further stage: start from a previous stage's weights (a new schedule, not a resume).
        model = YOLO(str(args.init))
    else:
        model = YOLO(str(common.write_model_yaml(args.width, Path(args.work) / "cfg")))
    t0 = time.time()
    model.train(
        data=str(args.data), epochs=args.epochs, imgsz=IMGSZ, batch=args.batch,
        # nbs = batch: one optimizer step per batch. With the default nbs 64 a small data set
        # gets only a few hundred steps in a CPU-sized schedule.
        nbs=args.batch, optimizer="AdamW", lr0=args.lr0, workers=0, device="cpu", amp=False,
        plots=False, seed=args.seed, deterministic=True, close_mosaic=args.close_mosaic,
        warmup_epochs=args.warmup_epochs, project=str(Path(args.work).resolve()),
        name=args.run, exist_ok=True, verbose=True)
    wall = time.time() - t0
    info = {"train_wall_s": round(wall, 1), "epochs": args.epochs, "batch": args.batch,
            "width": args.width, "seed": args.seed, "lr0": args.lr0, "imgsz": IMGSZ,
            "close_mosaic": args.close_mosaic, "warmup_epochs": args.warmup_epochs,
            "init": str(args.init) if args.init else None, "versions": common.versions()}
    (Path(args.work) / f"{args.run}_info.json").write_text(json.dumps(info, indent=1) + "\n")
    print(json.dumps(info))


def best_weights(args):
    return Path(args.work).resolve() / args.run / "weights" / "best.pt"


def cmd_export(args):
    from ultralytics import YOLO
    common.check_versions()
    out_dir = Path(args.out_dir)
    e2e = out_dir / f"{args.name}.onnx"
    raw = out_dir / f"{args.name}-raw.onnx"
    common.export_onnx(YOLO(str(best_weights(args))), IMGSZ, e2e)
    common.cut_raw(e2e, raw)
    report = {"end2end": common.describe(e2e), "raw": common.describe(raw)}

    ref_dir = common.REPO_ROOT / "tests" / "models"
    for key, path, ref in (("end2end", e2e, "yolov10m-full.nodes.txt"),
                           ("raw", raw, "yolov10m-full-raw.nodes.txt")):
        ref_lines = (ref_dir / ref).read_text().splitlines()
        diff = common.diff_node_lists(ref_lines, common.node_list(path))
        report[key]["node_diff_vs_full_width"] = diff
        report[key]["identity_nodes"] = common.identity_count(path)
    (Path(args.work) / "export_report.json").write_text(json.dumps(report, indent=1) + "\n")
    print(json.dumps(report, indent=1))
    if report["raw"]["node_diff_vs_full_width"]:
        raise SystemExit("raw graph node names differ from the full-width yolov10m export")


def cmd_validate(args):
    from ultralytics import YOLO
    common.check_versions()
    model = YOLO(str(best_weights(args)))
    t0 = time.time()
    m = model.val(data=str(args.data), imgsz=IMGSZ, batch=args.batch, device="cpu", workers=0,
                  plots=False, split="val", project=str(Path(args.work).resolve()), name="val",
                  exist_ok=True)
    res = {
        "map50_95": round(float(m.box.map), 4), "map50": round(float(m.box.map50), 4),
        "map75": round(float(m.box.map75), 4),
        "per_class_map50_95": {model.names[int(c)]: round(float(v), 4)
                               for c, v in zip(m.box.ap_class_index, m.box.maps[m.box.ap_class_index])},
        "val_wall_s": round(time.time() - t0, 1), "imgsz": IMGSZ,
    }
    (Path(args.work) / "val_results.json").write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))
    if res["map50_95"] < args.min_map:
        raise SystemExit(f"mAP50-95 {res['map50_95']} is below the required {args.min_map}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("step", choices=["train", "export", "validate", "all"])
    ap.add_argument("--data", type=Path, help="dataset yaml from make_shapes_dataset.py")
    ap.add_argument("--work", type=Path, required=True, help="scratch folder for the run")
    ap.add_argument("--width", type=float, default=0.1875)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr0", type=float, default=0.002)
    ap.add_argument("--close-mosaic", type=int, default=10)
    ap.add_argument("--warmup-epochs", type=float, default=3.0)
    ap.add_argument("--init", type=Path, help="start from these weights (.pt) instead of the yaml")
    ap.add_argument("--run", default="train", help="run folder name under --work")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out-dir", type=Path, default=common.REPO_ROOT / "assets")
    ap.add_argument("--name", default="shapes-yolov10m-w0p1875")
    ap.add_argument("--min-map", type=float, default=0.70,
                    help="validate fails below this mAP50-95")
    args = ap.parse_args()
    if args.step in ("train", "all"):
        cmd_train(args)
    if args.step in ("export", "all"):
        cmd_export(args)
    if args.step in ("validate", "all"):
        cmd_validate(args)


if __name__ == "__main__":
    main()
