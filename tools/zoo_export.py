#!/usr/bin/env python3
"""Exports the model zoo (issue 16 item 2) to ONNX with seeded random weights, plus a manifest.

Run with the training venv (tools/setup_train.sh: Debian's torch 1.13 + Ultralytics 8.3.x); no
model hub is reached: Ultralytics models are built from their yaml names, torchvision models from
their constructors with weights=None, so every weight is random (seeded, deterministic).

  .venv-train/bin/python tools/zoo_export.py --out tests/models/zoo            # the full zoo
  .venv-train/bin/python tools/zoo_export.py --out tests/models/zoo --only yolov8m resnet50
  .venv-train/bin/python tools/zoo_export.py --tiny --out tests/models/zoo-tiny  # the CI set

The manifest (manifest.json in --out) lists per model: file, input name and shape, kind
("classifier", "segmenter" or "detector") and for detectors the head type:
  - "decoded":   [1, 4+nc, N] (cx, cy, w, h in pixels, then class scores; YOLOv8/YOLO11 export)
  - "raw-dfl":   [1, 4*16+nc, N] DFL logits and class logits (the same graph cut before its decode)
  - "end2end":   [1, 300, 6] (x1, y1, x2, y2, score, class; YOLOv10's NMS-free head)
  - "rtdetr":    [1, 300, 4+nc] (normalized cx, cy, w, h then class scores; RT-DETR)
Exports that fail are reported in the manifest under "failed" with the reason; the others go on.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import yolo_fixture_common as common  # noqa: E402  (sets Ultralytics' offline env first)

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

OPSET = 13          # what the project's fixtures use; RT-DETR needs GridSample (opset 16)
RTDETR_OPSET = 16


def seed_all(seed):
    torch.manual_seed(seed)
    np.random.seed(seed)


# ---------------------------------------------------------------------------------------------
# Ultralytics

def yolo_from_yaml(yaml_name, seed, width=None, nc=None):
    """An Ultralytics model with random weights, seeded; width/nc override the yaml's scale."""
    from ultralytics import RTDETR, YOLO
    import ultralytics
    seed_all(seed)
    if width is not None or nc is not None:
        # A copy of the yaml with every scale's width (and nc) replaced; the file name keeps
        # the scale letter that Ultralytics reads from it.
        import re
        base = yaml_name[:-len(".yaml")]
        stem = base.rstrip("nsmlx")
        scale = base[len(stem):]
        cfg = Path(ultralytics.__file__).parent / "cfg" / "models"
        # rtdetr-l.yaml exists under its own name (one scale); yolov8n.yaml is yolov8.yaml's n
        src = next((p for p in cfg.rglob(yaml_name) if p.is_file()), None) or next(
            (p for p in cfg.rglob(f"{stem}.yaml") if p.is_file()), None)
        if src is None or not scale:
            raise SystemExit(f"no base yaml for {yaml_name}")
        text = src.read_text()
        if width is not None:
            text = re.sub(rf"^(\s*{scale}:\s*\[)\s*([\d.]+),\s*([\d.]+),\s*(\d+)\s*\]",
                          lambda m: f"{m.group(1)}{m.group(2)}, {width:g}, {m.group(4)}]",
                          text, flags=re.M)
        if nc is not None:
            text = re.sub(r"^nc:\s*\d+", f"nc: {nc}", text, flags=re.M)
        tmpdir = Path(tempfile.mkdtemp(prefix="zoo-yaml-"))
        path = tmpdir / yaml_name
        path.write_text(text)
        yaml_name = str(path)
    seed_all(seed)
    model = RTDETR(yaml_name) if "rtdetr" in Path(yaml_name).name else YOLO(yaml_name)
    common.randomize_bn_and_biases(model.model, seed)
    return model


def export_ultralytics(yaml_name, out_path, imgsz, seed, opset, width=None, nc=None):
    model = yolo_from_yaml(yaml_name, seed, width, nc)
    model.model.eval()
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            produced = model.export(format="onnx", imgsz=imgsz, opset=opset, simplify=False,
                                    dynamic=False, half=False, batch=1, device="cpu")
            m = onnx.load(produced)
        finally:
            os.chdir(cwd)
    common.normalize_metadata(m)
    onnx.save(m, str(out_path))
    return m


def cut_raw_dfl(decoded_path, raw_path):
    """The raw DFL head [1, 4*16+nc, N] of a YOLOv8/YOLO11 decoded export: the Concat of the
    three levels' [64 DFL | nc class] logits that feeds the Split before the DFL decode."""
    m = onnx.load(str(decoded_path))
    split = [n for n in m.graph.node if n.op_type == "Split"]
    if not split:
        raise RuntimeError("no Split in the decoded export")
    raw_name = split[-1].input[0]
    onnx.utils.extract_model(str(decoded_path), str(raw_path), [m.graph.input[0].name],
                             [raw_name])
    raw = onnx.load(str(raw_path))
    raw.producer_name, raw.producer_version = m.producer_name, m.producer_version
    for p in m.metadata_props:
        raw.metadata_props.add(key=p.key, value=p.value)
    onnx.save(raw, str(raw_path))


# ---------------------------------------------------------------------------------------------
# torchvision and the U-Net

class UNet(torch.nn.Module):
    """A small U-Net: conv-BN-ReLU blocks, MaxPool down, ConvTranspose (stride 2) up, skip Concat,
    1x1 head to per-pixel class logits."""

    def __init__(self, c=16, classes=2, depth=3):
        super().__init__()
        nn = torch.nn

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o),
                                 nn.ReLU(inplace=True), nn.Conv2d(o, o, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(o), nn.ReLU(inplace=True))
        chans = [c * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([block(3 if i == 0 else chans[i - 1], chans[i])
                                   for i in range(depth)])
        self.pool = nn.MaxPool2d(2)
        self.mid = block(chans[depth - 1], chans[depth])
        self.up = nn.ModuleList([nn.ConvTranspose2d(chans[i + 1], chans[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.dec = nn.ModuleList([block(chans[i] * 2, chans[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(chans[0], classes, 1)

    def forward(self, x):
        skips = []
        for d in self.down:
            x = d(x)
            skips.append(x)
            x = self.pool(x)
        x = self.mid(x)
        for up, dec, s in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), s], 1))
        return self.head(x)


def randomize_bn(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1.0 + 0.1 * (torch.rand(n, generator=g) - 0.5))
                m.bias.copy_(0.1 * (torch.rand(n, generator=g) - 0.5))
                m.running_mean.copy_(0.1 * (torch.rand(n, generator=g) - 0.5))
                m.running_var.copy_(1.0 + 0.2 * torch.rand(n, generator=g))


def export_torch(build, out_path, shape, seed, opset=OPSET, output="output"):
    seed_all(seed)
    model = build()
    randomize_bn(model, seed)
    model.eval()
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed))
    torch.onnx.export(model, x, str(out_path), opset_version=opset, input_names=["input"],
                      output_names=[output], do_constant_folding=True)
    return onnx.load(str(out_path))


def tv(name, **kw):
    import torchvision
    return lambda: getattr(torchvision.models, name)(weights=None, **kw)


# ---------------------------------------------------------------------------------------------
# The zoo: name -> (exporter, manifest entry). An exporter writes the file(s) and returns extra
# entries (e.g. the raw-DFL cut) as a list of (name, file, kind, head).

def ul(yaml_name, head, imgsz=640, opset=OPSET, raw=False, width=None, nc=None):
    def run(name, out_dir, seed):
        path = out_dir / f"{name}.onnx"
        export_ultralytics(yaml_name, path, imgsz, seed, opset, width, nc)
        files = [(name, path, "detector", head)]
        if raw:
            raw_path = out_dir / f"{name}-raw.onnx"
            cut_raw_dfl(path, raw_path)
            files.append((f"{name}-raw", raw_path, "detector", "raw-dfl"))
        return files
    return run


def tm(build, shape, kind):
    def run(name, out_dir, seed):
        path = out_dir / f"{name}.onnx"
        export_torch(build, path, shape, seed)
        return [(name, path, kind, None)]
    return run


FULL = {
    "yolov8m": ul("yolov8m.yaml", "decoded", raw=True),
    "yolo11m": ul("yolo11m.yaml", "decoded", raw=True),
    "yolov10n": ul("yolov10n.yaml", "end2end"),
    "yolov10s": ul("yolov10s.yaml", "end2end"),
    "yolov10m": ul("yolov10m.yaml", "end2end"),
    "yolov10l": ul("yolov10l.yaml", "end2end"),
    "yolov10x": ul("yolov10x.yaml", "end2end"),
    "rtdetr-l": ul("rtdetr-l.yaml", "rtdetr", opset=RTDETR_OPSET),
    "resnet50": tm(tv("resnet50"), (1, 3, 224, 224), "classifier"),
    "mobilenetv3-large": tm(tv("mobilenet_v3_large"), (1, 3, 224, 224), "classifier"),
    "efficientnet-b0": tm(tv("efficientnet_b0"), (1, 3, 224, 224), "classifier"),
    "convnext-tiny": tm(tv("convnext_tiny"), (1, 3, 224, 224), "classifier"),
    "unet-small": tm(lambda: UNet(16, 2, 3), (1, 3, 256, 256), "segmenter"),
}

# The CI set (tests/models/zoo-tiny/, committed): reduced width and resolution, distinct
# architectures, a few hundred kB to a few MB each (tests/py/test_zoo_tiny.py cuts the raw DFL
# head out of yolov8n-tiny itself).
TINY = {
    "yolov8n-tiny": ul("yolov8n.yaml", "decoded", imgsz=160, width=0.0625, nc=4),
    "yolo11n-tiny": ul("yolo11n.yaml", "decoded", imgsz=160, width=0.125, nc=4),
    "mobilenetv3-small-tiny": tm(tv("mobilenet_v3_small", width_mult=0.25, num_classes=10),
                                 (1, 3, 96, 96), "classifier"),
    # No RT-DETR here: its decoder (hidden 256, 6 layers) and AIFI do not follow the yaml's
    # width, so even at width 0.125 the export is 58 MB (the full zoo has rtdetr-l).
    "unet-tiny": tm(lambda: UNet(20, 2, 2), (1, 3, 64, 64), "segmenter"),  # > 16 channels: FP8 too
}


def dims(vi):
    return [d.dim_value if d.HasField("dim_value") else d.dim_param
            for d in vi.type.tensor_type.shape.dim]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--tiny", action="store_true", help="the CI set instead of the full zoo")
    ap.add_argument("--only", nargs="+", help="export only these models (others kept)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    common.check_versions()
    zoo = TINY if a.tiny else FULL
    names = a.only or list(zoo)
    unknown = [n for n in names if n not in zoo]
    if unknown:
        raise SystemExit(f"unknown model(s) {unknown}; known: {list(zoo)}")
    a.out.mkdir(parents=True, exist_ok=True)
    manifest_path = a.out / "manifest.json"
    manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    manifest.update({"seed": a.seed, "versions": common.versions(),
                     "command": "tools/zoo_export.py" + (" --tiny" if a.tiny else "")})
    models = {m["name"]: m for m in manifest.get("models", [])}
    failed = dict(manifest.get("failed", {}))
    for name in names:
        print(f"zoo_export: {name}", file=sys.stderr, flush=True)
        try:
            with tempfile.TemporaryDirectory(dir=a.out) as tmp:
                files = zoo[name](name, Path(tmp), a.seed)
                for mname, path, kind, head in files:
                    m = onnx.load(str(path))
                    dest = a.out / path.name
                    shutil.move(str(path), str(dest))
                    models[mname] = {
                        "name": mname, "file": dest.name, "kind": kind,
                        "input": m.graph.input[0].name, "input_shape": dims(m.graph.input[0]),
                        "outputs": {o.name: dims(o) for o in m.graph.output},
                        "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
                        "bytes": dest.stat().st_size}
                    if head:
                        models[mname]["head"] = head
                    failed.pop(mname, None)
        except Exception as e:  # noqa: BLE001 - reported in the manifest, the rest goes on
            traceback.print_exc()
            failed[name] = f"{type(e).__name__}: {e}"
        # After every model, so that a long run can be used (and interrupted) as it goes.
        manifest["models"] = sorted(models.values(), key=lambda m: m["name"])
        manifest["failed"] = failed
        tmp = manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.replace(manifest_path)
    print(json.dumps({"exported": sorted(models), "failed": failed}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
