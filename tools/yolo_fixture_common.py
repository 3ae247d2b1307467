"""Shared helpers for the fixture tools (export_fixtures.py, train_fixture.py).

Run these tools with .venv-train/bin/python (tools/setup_train.sh builds it): Debian's torch 1.13
stack plus Ultralytics 8.3.253. Ultralytics is kept offline and away from pip by environment
variables that must be set before it is imported, so import this module first.
"""

import os
import re
import tempfile
from pathlib import Path

# Before any ultralytics import. YOLO_OFFLINE must be the literal word "true"
# (research/fixture-feasibility.md, "Keeping ultralytics offline").
os.environ.setdefault("YOLO_OFFLINE", "true")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")
os.environ.setdefault("ULTRALYTICS_SKIP_REQUIREMENTS_CHECKS", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(tempfile.gettempdir(), "lowbit-yolo-config"))
os.environ.setdefault("OMP_NUM_THREADS", "2")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
import torch  # noqa: E402

# The raw head tensor of the Ultralytics 8.2/8.3 v10Detect export: per-level [64 DFL | nc class]
# logits concatenated over the 3 levels (research/fixture-feasibility.md, "What
# /model.23/Concat_3_output_0 is"). 8.4.x gives this name to a different tensor.
RAW_OUTPUT = "/model.23/Concat_3_output_0"
OPSET = 13
REPO_ROOT = Path(__file__).resolve().parent.parent


def check_versions():
    import ultralytics
    if not ultralytics.__version__.startswith("8.3."):
        raise SystemExit(f"need ultralytics 8.3.x (raw head layout), found {ultralytics.__version__}")


def versions():
    import cv2
    import ultralytics
    return {"ultralytics": ultralytics.__version__, "torch": torch.__version__,
            "onnx": onnx.__version__, "numpy": np.__version__, "opencv": cv2.__version__}


def width_tag(width):
    """0.1875 -> 'w0p1875'."""
    return "w" + f"{width:g}".replace(".", "p")


def write_model_yaml(width, out_dir, nc=80):
    """Copies Ultralytics' yolov10m.yaml with only the width of scale m (and nc) changed.

    The file name keeps the 'yolov10m-' prefix: Ultralytics picks the scale letter from it.
    Width 0.125 is impossible (PSA heads = channels // 64 = 0).
    """
    import ultralytics
    src = Path(ultralytics.__file__).parent / "cfg" / "models" / "v10" / "yolov10m.yaml"
    text = src.read_text()
    scale_line = re.compile(r"^(\s*m:\s*\[)\s*0\.67,\s*0\.75,\s*768\s*\]", re.M)
    if not scale_line.search(text):
        raise SystemExit(f"unexpected scale line in {src}")
    text = scale_line.sub(lambda m: f"{m.group(1)}0.67, {width:g}, 768]", text)
    text = re.sub(r"^nc:\s*\d+", f"nc: {nc}", text, flags=re.M)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "yolov10m.yaml" if width == 0.75 else f"yolov10m-{width_tag(width)}.yaml"
    path = out_dir / name
    path.write_text(text)
    return path


def randomize_bn_and_biases(model, seed):
    """Makes every folded Conv bias distinct so that the exporter emits no Identity nodes.

    With untouched init every BN has weight 1, bias 0, mean 0, var 1, so all fused biases are
    zero vectors and the torch exporter deduplicates equal initializers into Identity nodes,
    which a trained model never has (research/fixture-feasibility.md, step 5).
    """
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(1.0 + 0.1 * (torch.rand(n, generator=g) - 0.5))
                m.bias.copy_(0.02 * (torch.rand(n, generator=g) - 0.5))
                m.running_mean.copy_(0.02 * (torch.rand(n, generator=g) - 0.5))
                m.running_var.copy_(1.0 + 0.1 * torch.rand(n, generator=g))
            elif isinstance(m, torch.nn.Conv2d) and m.bias is not None:
                m.bias.add_(0.02 * (torch.rand(m.bias.shape, generator=g) - 0.5))


def export_onnx(yolo, imgsz, out_path):
    """Ultralytics' default (end-to-end [1,300,6]) ONNX export at opset 13, no onnxslim."""
    produced = yolo.export(format="onnx", imgsz=imgsz, opset=OPSET, simplify=False,
                           dynamic=False, half=False, batch=1, device="cpu")
    model = onnx.load(produced)
    normalize_metadata(model)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out_path))
    if Path(produced).resolve() != out_path.resolve():
        Path(produced).unlink()
    return out_path


def normalize_metadata(model):
    """Drops the export timestamp so the same seed gives byte-identical files."""
    keep = [(p.key, p.value) for p in model.metadata_props if p.key != "date"]
    del model.metadata_props[:]
    for k, v in keep:
        model.metadata_props.add(key=k, value=v)


def cut_raw(end2end_path, raw_path):
    """The raw-head model: the same graph cut at RAW_OUTPUT, names preserved."""
    onnx.utils.extract_model(str(end2end_path), str(raw_path), ["images"], [RAW_OUTPUT])
    src = onnx.load(str(end2end_path))
    raw = onnx.load(str(raw_path))
    # extract_model does not carry the producer or the metadata (class names, stride, imgsz).
    raw.producer_name, raw.producer_version = src.producer_name, src.producer_version
    for p in src.metadata_props:
        raw.metadata_props.add(key=p.key, value=p.value)
    onnx.save(raw, str(raw_path))
    return raw_path


def node_list(model_or_path):
    """One 'OpType name' line per node, in graph order."""
    m = model_or_path if isinstance(model_or_path, onnx.ModelProto) else onnx.load(
        str(model_or_path))
    return [f"{n.op_type} {n.name}" for n in m.graph.node]


def identity_count(path):
    return sum(1 for n in onnx.load(str(path)).graph.node if n.op_type == "Identity")


def diff_node_lists(a, b):
    """Human-readable differences between two node lists (empty list: identical)."""
    import difflib
    return [l for l in difflib.unified_diff(a, b, lineterm="", n=0)
            if not l.startswith(("---", "+++", "@@"))]


def describe(path):
    m = onnx.load(str(path))
    def dims(vi):
        return [d.dim_value if d.HasField("dim_value") else d.dim_param
                for d in vi.type.tensor_type.shape.dim]
    return {
        "bytes": Path(path).stat().st_size,
        "nodes": len(m.graph.node),
        "initializer_elements": int(sum(np.prod(t.dims) for t in m.graph.initializer)),
        "inputs": {i.name: dims(i) for i in m.graph.input},
        "outputs": {o.name: dims(o) for o in m.graph.output},
        "opset": [(o.domain, o.version) for o in m.opset_import],
        "ir_version": m.ir_version,
    }
