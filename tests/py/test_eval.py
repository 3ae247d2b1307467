"""`lowbit eval` against a Python reference pipeline built from the real peers.

Reference (research/seed-spec.md §3, §5): cv2 letterbox -> onnxruntime -> NumPy decode (raw DFL,
decoded xywh or end-to-end) -> class-aware greedy NMS -> un-letterbox + clip -> pycocotools
COCOeval on the evaluated image ids. The two pipelines share nothing but the files; their 12
stats must agree within 1e-4 (the engines differ in float rounding only).

Model + data, in order of preference:
  1. the bundled trained model and val set (assets/<model>, assets/val/);
  2. the committed random-weight fixtures (tests/models/) on generated images: they detect
     nothing (mAP ~ 0), so this only proves the plumbing; --conf is lowered so that the
     pipelines do produce detections.
"""
import contextlib
import io
import json
import os
import subprocess

import cv2
import numpy as np
import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
N_IMAGES = int(os.environ.get("LOWBIT_EVAL_IMAGES", "0"))

COCO80_TO_91 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23,
                24, 25, 27, 28, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47,
                48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70,
                72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90]


# ---------------------------------------------------------------------------------------------
# Reference pipeline


def letterbox(path, size):
    img = cv2.imread(path)
    assert img is not None, path
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    scale = min(size / h, size / w)
    nw, nh = int(round(w * scale)), int(round(h * scale))
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    pl, pt = (size - nw) // 2, (size - nh) // 2
    img = cv2.copyMakeBorder(img, pt, size - nh - pt, pl, size - nw - pl, cv2.BORDER_CONSTANT,
                             value=(114, 114, 114))
    x = np.ascontiguousarray(img.transpose(2, 0, 1)).astype(np.float32) / 255.0
    return x[None], dict(scale=scale, pl=pl, pt=pt, w=w, h=h)


def anchors(size):
    pts, strides = [], []
    for s in (8, 16, 32):
        g = size // s
        ys, xs = np.meshgrid(np.arange(g), np.arange(g), indexing="ij")
        pts.append(np.stack([(xs.ravel().astype(np.float32) + np.float32(0.5)) * np.float32(s),
                             (ys.ravel().astype(np.float32) + np.float32(0.5)) * np.float32(s)],
                            1))
        strides.append(np.full(g * g, s, np.float32))
    return np.concatenate(pts), np.concatenate(strides)


def nms(boxes, scores, cls, iou_thr, max_det):
    x1, y1, x2, y2 = boxes.T
    areas = np.maximum(np.float32(0), x2 - x1) * np.maximum(np.float32(0), y2 - y1)
    n = len(scores)
    suppressed = np.zeros(n, bool)
    keep = []
    for i in range(n):
        if suppressed[i]:
            continue
        keep.append(i)
        if len(keep) >= max_det:
            break
        rest = np.arange(i + 1, n)
        rest = rest[~suppressed[rest] & (cls[rest] == cls[i])]
        if not len(rest):
            continue
        w = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        iou = inter / (areas[i] + areas[rest] - inter + np.float32(1e-9))
        suppressed[rest[iou > np.float32(iou_thr)]] = True
    return np.array(keep, dtype=np.int64)


def decode(out, size, kind, nc, conf, iou, max_det, topk, sigmoid):
    out = out.astype(np.float32)
    if out.ndim == 3:
        out = out[0]
    conf = np.float32(conf)
    if kind == "e2e":
        score = out[:, 4]
        idx = np.nonzero(score >= conf)[0]
        idx = idx[np.argsort(-score[idx], kind="stable")][:max_det]
        return out[idx, :4], score[idx], out[idx, 5].astype(np.int64)
    n_anchors = anchors(size)[0].shape[0]
    if out.shape[1] != n_anchors:
        out = out.T  # [N, C] -> [C, N]
    box_ch = 64 if kind == "dfl" else 4
    logits = out[box_ch:box_ch + nc]
    prob = np.float32(1) / (np.float32(1) + np.exp(-logits)) if sigmoid else logits
    score = prob.max(0)
    cls = prob.argmax(0)
    idx = np.nonzero(score >= conf)[0]
    idx = idx[np.argsort(-score[idx], kind="stable")][:topk]
    if kind == "dfl":
        v = out[:64, idx].reshape(4, 16, -1)
        e = np.exp(v - v.max(1, keepdims=True))
        p = e / e.sum(1, keepdims=True)
        d = (p * np.arange(16, dtype=np.float32)[None, :, None]).sum(1)
        pts, st = anchors(size)
        ax, ay, s = pts[idx, 0], pts[idx, 1], st[idx]
        boxes = np.stack([ax - d[0] * s, ay - d[1] * s, ax + d[2] * s, ay + d[3] * s], 1)
    else:
        cx, cy, w, h = out[0, idx], out[1, idx], out[2, idx], out[3, idx]
        half = np.float32(2)
        boxes = np.stack([cx - w / half, cy - h / half, cx + w / half, cy + h / half], 1)
    keep = nms(boxes, score[idx], cls[idx], iou, max_det)
    return boxes[keep], score[idx][keep], cls[idx][keep]


def class_map(categories, nc, names):
    ids = sorted({c["id"] for c in categories})
    if names and all(c["name"] in names for c in categories):
        by_name = {c["name"]: c["id"] for c in categories}
        return [by_name.get(n, -1) for n in names]
    nc = nc or len(names)
    if ids and all(i in COCO80_TO_91 for i in ids) and (nc == 80 or (nc == 0 and len(ids) == 80)):
        return COCO80_TO_91
    return (ids + [-1] * max(0, nc - len(ids)))[:nc] if nc else ids


def model_names(onnx_path):
    import onnx
    m = onnx.load(onnx_path, load_external_data=False)
    for p in m.metadata_props:
        if p.key == "names":
            import ast
            d = ast.literal_eval(p.value)
            return [d[i] for i in range(len(d))]
    return []


def reference_eval(model, ann, images_dir, n_images, conf, iou=0.7, max_det=300, topk=30000):
    import onnxruntime as ort
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    sess = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    inp = sess.get_inputs()[0]
    size = int(inp.shape[2])
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann)
    ids = sorted(gt.getImgIds())[:n_images]
    names = model_names(model)
    mapping, kind, nc, sigmoid = None, None, 0, True
    dets = []
    for img_id in ids:
        info = gt.loadImgs(img_id)[0]
        x, lb = letterbox(os.path.join(images_dir, info["file_name"]), size)
        out = sess.run(None, {inp.name: x})[0]
        if kind is None:
            n_anchors = anchors(size)[0].shape[0]
            c = out.shape[-2] if out.shape[-1] == n_anchors else out.shape[-1]
            if out.shape[-1] == 6 and out.shape[-2] != n_anchors:
                kind = "e2e"
            else:
                expected = len(names) or len(gt.getCatIds())
                kind = "dfl" if c == 64 + expected or c == 144 else "decoded"
                nc = c - (64 if kind == "dfl" else 4)
                cls_vals = (out[0, -nc:] if out.shape[1] == c else out[0, :, -nc:])
                sigmoid = not bool(((cls_vals >= 0) & (cls_vals <= 1)).all())
            mapping = class_map(gt.dataset["categories"], nc, names)
        boxes, scores, cls = decode(out, size, kind, nc, conf, iou, max_det, topk, sigmoid)
        for b, s, c in zip(boxes, scores, cls):
            cat = mapping[c] if 0 <= c < len(mapping) else -1
            if cat < 0:
                continue
            x1 = np.clip((b[0] - np.float32(lb["pl"])) / np.float32(lb["scale"]), 0, lb["w"])
            x2 = np.clip((b[2] - np.float32(lb["pl"])) / np.float32(lb["scale"]), 0, lb["w"])
            y1 = np.clip((b[1] - np.float32(lb["pt"])) / np.float32(lb["scale"]), 0, lb["h"])
            y2 = np.clip((b[3] - np.float32(lb["pt"])) / np.float32(lb["scale"]), 0, lb["h"])
            bw = max(np.float32(0), np.float32(x2 - x1))
            bh = max(np.float32(0), np.float32(y2 - y1))
            dets.append({"image_id": img_id, "category_id": int(cat),
                         "bbox": [float(x1), float(y1), float(bw), float(bh)],
                         "score": float(s)})
    with contextlib.redirect_stdout(io.StringIO()):
        if dets:
            dt = gt.loadRes(dets)
        else:
            dt = COCO()
            dt.dataset = {"images": gt.dataset["images"], "categories": gt.dataset["categories"],
                          "annotations": []}
            dt.createIndex()
        ev = COCOeval(gt, dt, "bbox")
        ev.params.imgIds = ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats], dets


# ---------------------------------------------------------------------------------------------
# Fixtures


def synthetic_coco(folder, n=6, seed=0):
    """Images with rectangles and a matching annotation file (COCO ids 1 and 3)."""
    rng = np.random.default_rng(seed)
    os.makedirs(folder / "images", exist_ok=True)
    images, anns = [], []
    for i in range(n):
        w, h = int(rng.integers(300, 700)), int(rng.integers(300, 700))
        img = np.full((h, w, 3), 40, np.uint8) + rng.integers(0, 30, (h, w, 3), dtype=np.uint8)
        for _ in range(3):
            bw, bh = int(rng.integers(20, w // 2)), int(rng.integers(20, h // 2))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            img[y:y + bh, x:x + bw] = rng.integers(100, 255, 3)
            anns.append({"id": len(anns) + 1, "image_id": 100 + i, "category_id": [1, 3][i % 2],
                         "bbox": [x, y, bw, bh], "area": bw * bh, "iscrowd": 0})
        name = f"{100 + i:012d}.jpg"
        cv2.imwrite(str(folder / "images" / name), img)
        images.append({"id": 100 + i, "file_name": name, "width": w, "height": h})
    ann = {"images": images, "annotations": anns,
           "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}]}
    (folder / "ann.json").write_text(json.dumps(ann))
    return str(folder / "ann.json"), str(folder / "images")


def bundled():
    assets = os.path.join(SRC, "assets")
    ann = os.path.join(assets, "val", "instances_val.json")
    imgs = os.path.join(assets, "val", "images")
    models = sorted(f for f in os.listdir(assets) if f.endswith(".onnx")) \
        if os.path.isdir(assets) else []
    if os.path.isfile(ann) and os.path.isdir(imgs) and models:
        # The raw-head model first (the default), at most two models to keep CI short.
        models.sort(key=lambda m: (0 if "raw" in m else 1, m))
        return [os.path.join(assets, m) for m in models[:2]], ann, imgs
    return None


def run_lowbit(args):
    p = subprocess.run([LOWBIT, "eval", "--quiet"] + args, capture_output=True, text=True)
    return p


def compare(tmp_path, model, ann, imgs, n, conf, extra=()):
    ref_stats, ref_dets = reference_eval(model, ann, imgs, n, conf)
    out = tmp_path / "metrics.json"
    dets_path = tmp_path / "dets.json"
    p = run_lowbit([model, "--ann", ann, "--images", imgs, "--max-images", str(n), "--conf",
                    str(conf), "--out", str(out), "--save-detections", str(dets_path)] +
                   list(extra))
    assert p.returncode == 0, p.stderr
    m = json.loads(out.read_text())
    ours = m["metrics"]["stats"]
    for i, (a, b) in enumerate(zip(ours, ref_stats)):
        assert abs(a - b) <= 1e-4, f"{os.path.basename(model)} stat {i}: lowbit {a} vs ref {b}"
    dets = json.loads(dets_path.read_text())
    assert m["metrics"]["num_detections"] == len(dets)
    # Detection counts agree up to score ties at the threshold/max_det edge.
    assert abs(len(dets) - len(ref_dets)) <= max(2, 0.02 * len(ref_dets)), \
        (len(dets), len(ref_dets))
    # The seed's metrics.json schema, in order.
    assert list(m)[:15] == ["onnx_path", "data_root", "instances", "images_dir", "providers",
                            "imgsz", "max_images", "warmup_runs", "skip_latency", "conf", "iou",
                            "max_det", "pre_nms_topk", "metrics", "latency"]
    assert list(m["latency"])[:4] == ["mean_ms", "median_ms", "p90_ms", "throughput_fps"]
    assert len(m["latency"]["times_ms"]) == m["latency"]["samples"]
    assert m["metrics"]["mAP_50_95"] == ours[0] and m["metrics"]["num_images"] == n
    return ours, ref_stats


@pytest.fixture(scope="module", autouse=True)
def _need_binary():
    if not LOWBIT or not os.path.exists(LOWBIT):
        pytest.fail("LOWBIT_BIN must point at the lowbit binary")


def test_eval_matches_reference_on_bundled_model(tmp_path):
    b = bundled()
    if b is None:
        pytest.skip("no bundled trained model + val set in assets/ yet "
                    "(assets/*.onnx, assets/val/instances_val.json, assets/val/images)")
    models, ann, imgs = b
    for model in models:
        ours, ref = compare(tmp_path, model, ann, imgs, N_IMAGES or 24, 0.001)
        print(os.path.basename(model), "lowbit", ours[:3], "reference", ref[:3])


@pytest.mark.parametrize("name", ["yolov10m-w0p1875-raw.onnx", "yolov10m-w0p1875.onnx"])
def test_eval_matches_reference_on_fixture_model(tmp_path, name):
    model = os.path.join(SRC, "tests", "models", name)
    if not os.path.isfile(model):
        pytest.skip(f"{model} is not committed")
    ann, imgs = synthetic_coco(tmp_path / "data")
    # Random weights score ~1.6e-4: lower --conf so there is something to compare.
    compare(tmp_path, model, ann, imgs, N_IMAGES or 3, 1e-4)


# ---------------------------------------------------------------------------------------------
# Bad inputs: clear errors naming the file or tensor, non-zero exit


def tiny_model(path, out_channels):
    """images [1,3,64,64] -> Conv(1x1, stride 32) -> Reshape [1, C, 4]: no YOLO layout."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    w = numpy_helper.from_array(np.full((out_channels, 3, 1, 1), 0.1, np.float32), "w")
    shape = numpy_helper.from_array(np.array([1, out_channels, 4], np.int64), "shape")
    g = helper.make_graph(
        [helper.make_node("Conv", ["images", "w"], ["c"], strides=[32, 32], name="conv"),
         helper.make_node("Reshape", ["c", "shape"], ["weird_out"], name="reshape")],
        "tiny", [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 64, 64])],
        [helper.make_tensor_value_info("weird_out", TensorProto.FLOAT, [1, out_channels, 4])],
        [w, shape])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 7
    onnx.save(m, path)


def test_bad_inputs(tmp_path):
    ann, imgs = synthetic_coco(tmp_path / "data", n=2)
    model = tmp_path / "tiny.onnx"
    tiny_model(str(model), 7)

    p = run_lowbit([str(model), "--ann", ann, "--images", imgs])
    assert p.returncode != 0 and "weird_out" in p.stderr and "[1,7,4]" in p.stderr, p.stderr

    p = run_lowbit([str(model), "--ann", ann, "--images", imgs, "--head", "e2e"])
    assert p.returncode != 0 and "weird_out" in p.stderr, p.stderr

    a = json.loads(open(ann).read())
    a["images"][0]["file_name"] = "not_there.jpg"
    bad_ann = tmp_path / "missing_image.json"
    bad_ann.write_text(json.dumps(a))
    p = run_lowbit([str(model), "--ann", str(bad_ann), "--images", imgs])
    assert p.returncode != 0 and "not_there.jpg" in p.stderr, p.stderr

    a["images"][0]["file_name"] = "corrupt.jpg"
    (tmp_path / "data" / "images" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff" + b"x" * 500)
    bad_ann.write_text(json.dumps(a))
    p = run_lowbit([str(model), "--ann", str(bad_ann), "--images", imgs])
    assert p.returncode != 0 and "corrupt.jpg" in p.stderr, p.stderr

    broken = tmp_path / "broken.json"
    broken.write_text(open(ann).read()[:-30])
    p = run_lowbit([str(model), "--ann", str(broken), "--images", imgs])
    assert p.returncode != 0 and "broken.json" in p.stderr, p.stderr

    p = run_lowbit([str(tmp_path / "no_model.onnx"), "--ann", ann, "--images", imgs])
    assert p.returncode != 0 and "no_model.onnx" in p.stderr, p.stderr

    # No data flags and no bundled val set: say what is missing and how to pass data.
    empty_assets = tmp_path / "assets"
    empty_assets.mkdir()
    env = dict(os.environ, LOWBIT_ASSETS=str(empty_assets))
    p = subprocess.run([LOWBIT, "eval", str(model)], capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "assets/val" in p.stderr and "--data-root" in p.stderr, p.stderr
    p = subprocess.run([LOWBIT, "eval"], capture_output=True, text=True, env=env)
    assert p.returncode != 0 and "model" in p.stderr, p.stderr
