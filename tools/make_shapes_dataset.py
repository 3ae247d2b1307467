#!/usr/bin/env python3
"""Generates the synthetic "shapes" detection data set used to train lowbit's test model.

Deterministic from --seed: each split draws from its own numpy Generator seeded with
(seed, split index), so the same arguments always give byte-identical files (JPEG encoding of
a fixed array with a fixed OpenCV build is deterministic).

Every image has a cluttered background (gradient, low-frequency and pixel noise, thin lines,
soft blobs, faint irregular polygons) and 1-15 objects from 10 classes of varied appearance.
Objects may partially occlude earlier ones; each object keeps at least MIN_VISIBLE of its
pixels. Boxes are tight around the visible pixels, as in COCO. Some images also hold a dense
cluster of tiny discs: it is one iscrowd=1 annotation in the COCO file and is absent from the
Ultralytics labels (the Ultralytics COCO converter drops crowd annotations the same way).

Output (under --out):
  images/{train,val,calib}/<12-digit id>.jpg
  labels/{train,val}/<id>.txt           Ultralytics format: class cx cy w h (normalised)
  instances_{train,val}.json            COCO format; area = visible mask pixel count
  shapes.yaml                           Ultralytics dataset file (absolute path of --out)
  stats.json                            object counts per class and per COCO area range

With --assets DIR the val and calib splits are also copied into lowbit's bundled layout:
  DIR/val/images/*.jpg, DIR/val/instances_val.json
  DIR/calib/images/*.jpg, DIR/calib/calib100.txt  (one path per line, relative to the list's
                                                  folder, in generation order; the format of the
                                                  seed's quant100.txt, research/seed-spec.md 4.1)

Only numpy and OpenCV are used.
"""

import argparse
import json
import math
from pathlib import Path

import cv2
import numpy as np

CLASS_NAMES = [
    "disc", "ring", "frame", "triangle", "star", "cross", "glyph_A", "glyph_5", "checker",
    "stripes",
]
SPLITS = {"train": 0, "val": 1, "calib": 2}
# First image id of each split, so ids never collide between splits.
ID_BASE = {"train": 100001, "val": 1, "calib": 200001}
MIN_SIDE, MAX_SIDE = 240, 480
MIN_OBJ, MAX_OBJ_SIZE = 14, 260
MIN_VISIBLE = 0.6
SIZE_POWER = 1.0
CROWD_IMAGE_FRACTION = 0.06
# COCO area ranges (pycocotools COCOeval Params.areaRng), in original-image pixels.
SMALL_AREA, LARGE_AREA = 32 ** 2, 96 ** 2


def random_color(rng):
    return rng.integers(0, 256, size=3).astype(np.float32)


def contrasting_color(rng, reference, min_dist=70.0):
    """A colour whose mean absolute channel difference to `reference` is at least min_dist."""
    best, best_d = None, -1.0
    for _ in range(20):
        c = random_color(rng)
        d = float(np.abs(c - reference).mean())
        if d >= min_dist:
            return c
        if d > best_d:
            best, best_d = c, d
    return best


def make_background(rng, h, w):
    """Gradient + low-frequency noise + pixel noise + lines + soft blobs + faint polygons."""
    c0, c1 = random_color(rng), random_color(rng)
    angle = rng.uniform(0, 2 * math.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if rng.random() < 0.7:
        t = xx * math.cos(angle) + yy * math.sin(angle)
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        t = np.hypot(xx - cx, yy - cy)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]

    # Low-frequency colour noise: a small random grid upsampled bicubically.
    grid = rng.normal(0, rng.uniform(5, 25), size=(rng.integers(3, 8), rng.integers(3, 8), 3))
    img += cv2.resize(grid.astype(np.float32), (w, h), interpolation=cv2.INTER_CUBIC)

    # Soft distractor blobs: blurred ellipses, no sharp edges, so they never look like a class.
    for _ in range(rng.integers(0, 6)):
        blob = np.zeros((h, w), np.float32)
        center = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        axes = (int(rng.uniform(10, 70)), int(rng.uniform(10, 70)))
        cv2.ellipse(blob, center, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        sigma = rng.uniform(6, 18)
        blob = cv2.GaussianBlur(blob, (0, 0), sigma) * rng.uniform(0.3, 0.8)
        img = img * (1 - blob[..., None]) + random_color(rng)[None, None, :] * blob[..., None]

    # Faint irregular polygons: hard negatives with low contrast.
    for _ in range(rng.integers(0, 4)):
        n = int(rng.integers(5, 10))
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(8, 50)
        ang = np.sort(rng.uniform(0, 2 * math.pi, n))
        rad = r * rng.uniform(0.4, 1.0, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
        layer = img.copy()
        cv2.fillPoly(layer, [pts], random_color(rng).tolist(), cv2.LINE_AA)
        a = rng.uniform(0.15, 0.35)
        img = img * (1 - a) + layer * a

    # Thin lines across the image.
    for _ in range(rng.integers(2, 12)):
        p0 = (int(rng.uniform(-w * 0.2, w * 1.2)), int(rng.uniform(-h * 0.2, h * 1.2)))
        p1 = (int(rng.uniform(-w * 0.2, w * 1.2)), int(rng.uniform(-h * 0.2, h * 1.2)))
        cv2.line(img, p0, p1, random_color(rng).tolist(), int(rng.integers(1, 3)), cv2.LINE_AA)

    img += rng.normal(0, rng.uniform(1.5, 6.0), size=img.shape).astype(np.float32)
    return img


def regular_polygon(cx, cy, radii, rot):
    n = len(radii)
    ang = rot + np.arange(n) * 2 * math.pi / n
    return np.stack([cx + radii * np.cos(ang), cy + radii * np.sin(ang)], 1)


def fill(mask, pts):
    # 4 fractional bits keep small shapes accurate.
    cv2.fillPoly(mask, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)


def render_object(rng, cls, s, bg_ref):
    """Draws class `cls` with nominal size s (pixels) on a local canvas.

    Returns (colour HxWx3 float32, soft mask HxW float32 in [0,1]) cropped to the shape.
    """
    big = int(math.ceil(s * 1.5)) + 8
    c = big / 2.0
    mask = np.zeros((big, big), np.uint8)
    color = np.empty((big, big, 3), np.float32)
    col = contrasting_color(rng, bg_ref)
    color[:] = col
    max_rot = 180.0
    name = CLASS_NAMES[cls]
    if name == "disc":
        axes = (s / 2, s / 2 * rng.uniform(0.75, 1.0))
        cv2.ellipse(mask, (int(c * 16), int(c * 16)), (int(axes[0] * 16), int(axes[1] * 16)),
                    0, 0, 360, 255, -1, cv2.LINE_AA, 4)
    elif name == "ring":
        ratio = rng.uniform(0.8, 1.0)
        outer = (int(s / 2 * 16), int(s / 2 * ratio * 16))
        k = rng.uniform(0.45, 0.62)
        inner = (int(outer[0] * k), int(outer[1] * k))
        cv2.ellipse(mask, (int(c * 16), int(c * 16)), outer, 0, 0, 360, 255, -1, cv2.LINE_AA, 4)
        cv2.ellipse(mask, (int(c * 16), int(c * 16)), inner, 0, 0, 360, 0, -1, cv2.LINE_AA, 4)
    elif name == "frame":
        a = s * rng.uniform(0.8, 0.95) / 2
        b = a * rng.uniform(0.8, 1.0)
        t = max(2.0, s * rng.uniform(0.14, 0.22))
        fill(mask, np.array([[c - a, c - b], [c + a, c - b], [c + a, c + b], [c - a, c + b]]))
        ia, ib = a - t, b - t
        hole = np.zeros_like(mask)
        fill(hole, np.array([[c - ia, c - ib], [c + ia, c - ib], [c + ia, c + ib],
                             [c - ia, c + ib]]))
        mask = cv2.subtract(mask, hole)
    elif name == "triangle":
        radii = s / 2 * rng.uniform(0.92, 1.08, 3)
        fill(mask, regular_polygon(c, c, radii, 0.0))
    elif name == "star":
        radii = np.tile([s / 2, s / 2 * rng.uniform(0.38, 0.48)], 5)
        fill(mask, regular_polygon(c, c, radii, 0.0))
    elif name == "cross":
        hw, hl = s * rng.uniform(0.14, 0.18), s / 2
        fill(mask, np.array([[c - hl, c - hw], [c + hl, c - hw], [c + hl, c + hw],
                             [c - hl, c + hw]]))
        fill(mask, np.array([[c - hw, c - hl], [c + hw, c - hl], [c + hw, c + hl],
                             [c - hw, c + hl]]))
    elif name in ("glyph_A", "glyph_5"):
        text = name[-1]
        font = [cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX][int(rng.integers(0, 2))]
        thick = max(1, int(round(s / 7)))
        # Scale the glyph so that its cap height is about 0.9 s.
        _, th = cv2.getTextSize(text, font, 1.0, thick)[0]
        scale = s / max(th, 1) * 0.9
        tw, th = cv2.getTextSize(text, font, scale, thick)[0]
        org = (int(c - tw / 2), int(c + th / 2))
        cv2.putText(mask, text, org, font, scale, 255, thick, cv2.LINE_AA)
        max_rot = 25.0
    elif name == "checker":
        a = s * rng.uniform(0.75, 0.9) / 2
        fill(mask, np.array([[c - a, c - a], [c + a, c - a], [c + a, c + a], [c - a, c + a]]))
        cells = int(rng.integers(3, 6))
        col2 = contrasting_color(rng, col, 90.0)
        yy, xx = np.mgrid[0:big, 0:big]
        cell = 2 * a / cells
        parity = (np.floor((xx - (c - a)) / cell) + np.floor((yy - (c - a)) / cell)) % 2
        color[parity == 1] = col2
        max_rot = 45.0
    elif name == "stripes":
        a = s / 2 * rng.uniform(0.85, 1.0)
        b = a * rng.uniform(0.6, 0.9)
        fill(mask, np.array([[c - a, c - b], [c + a, c - b], [c + a, c + b], [c - a, c + b]]))
        n = int(rng.integers(3, 6))
        col2 = contrasting_color(rng, col, 90.0)
        yy = np.mgrid[0:big, 0:big][0]
        band = np.floor((yy - (c - b)) / (2 * b / n)) % 2
        color[band == 1] = col2
    else:
        raise ValueError(name)

    if name not in ("checker", "stripes"):
        # Gentle linear shading so solid shapes are not perfectly flat.
        g = rng.uniform(-25, 25)
        ramp = np.linspace(-1, 1, big, dtype=np.float32)[None, :, None] * g
        color = color + ramp

    rot = rng.uniform(-max_rot, max_rot)
    m = cv2.getRotationMatrix2D((c, c), rot, 1.0)
    mask = cv2.warpAffine(mask, m, (big, big), flags=cv2.INTER_LINEAR)
    color = cv2.warpAffine(color, m, (big, big), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    soft = mask[y0:y1, x0:x1].astype(np.float32) / 255.0
    return np.clip(color[y0:y1, x0:x1], 0, 255), soft


def rle_encode(binary):
    """Uncompressed COCO RLE: run lengths over the column-major flattening, starting with 0s."""
    flat = binary.T.reshape(-1).astype(np.uint8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat[0] == 1:
        counts = [0] + counts
    return {"counts": counts, "size": [int(binary.shape[0]), int(binary.shape[1])]}


def polygons_of(binary):
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_SIMPLE)
    polys = []
    for cnt in contours:
        cnt = cv2.approxPolyDP(cnt, 0.8, True)
        if len(cnt) >= 3:
            # Pixel centres -> pixel corners is out of scope; COCO polygons are approximate too.
            polys.append([float(v) for v in cnt.reshape(-1)])
    return polys


def box_of(binary):
    ys, xs = np.nonzero(binary)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    return [x0, y0, x1 - x0, y1 - y0]


def add_crowd(rng, img, h, w):
    """A dense cluster of tiny discs; returns its binary mask."""
    size = rng.uniform(30, 60)
    cx, cy = rng.uniform(size, w - size), rng.uniform(size, h - size)
    col = contrasting_color(rng, img[int(cy), int(cx)])
    soft = np.zeros((h, w), np.uint8)
    for _ in range(rng.integers(8, 16)):
        px, py = cx + rng.uniform(-size / 2, size / 2), cy + rng.uniform(-size / 2, size / 2)
        r = rng.uniform(2.0, 3.5)
        cv2.circle(soft, (int(px * 16), int(py * 16)), int(r * 16), 255, -1, cv2.LINE_AA, 4)
    a = soft.astype(np.float32)[..., None] / 255.0
    img[:] = img * (1 - a) + col[None, None, :] * a
    return soft >= 128


def make_image(rng, with_crowd_allowed=True):
    w = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    h = int(rng.integers(MIN_SIDE, MAX_SIDE + 1))
    img = make_background(rng, h, w)
    crowd = None
    if with_crowd_allowed and rng.random() < CROWD_IMAGE_FRACTION:
        crowd = add_crowd(rng, img, h, w)

    n_target = int(rng.integers(1, 16))
    objects = []  # dicts: cls, mask (full-size bool of own pixels), visible (bool)
    occupancy = np.zeros((h, w), np.int32) - 1  # index of the object on top, -1 = none
    max_size = min(MAX_OBJ_SIZE, int(0.75 * min(h, w)))
    attempts = 0
    while len(objects) < n_target and attempts < n_target * 12:
        attempts += 1
        cls = int(rng.integers(0, len(CLASS_NAMES)))
        # Skewed towards small sizes, but less than log-uniform: about 30 % of the objects end up
        # COCO-small, 20-25 % COCO-large (stats.json has the exact split).
        s = MIN_OBJ + (max_size - MIN_OBJ) * float(rng.uniform(0, 1)) ** SIZE_POWER
        x_guess, y_guess = int(rng.uniform(0, w)), int(rng.uniform(0, h))
        bg_ref = img[y_guess, x_guess]
        rendered = render_object(rng, cls, s, bg_ref)
        if rendered is None:
            continue
        color, soft = rendered
        oh, ow = soft.shape
        if oh + 2 > h or ow + 2 > w:
            continue
        x0 = int(rng.integers(1, w - ow))
        y0 = int(rng.integers(1, h - oh))
        own = np.zeros((h, w), bool)
        own[y0:y0 + oh, x0:x0 + ow] = soft >= 0.5
        if own.sum() < 20:
            continue
        # Reject placements that would hide too much of any earlier object.
        covered = occupancy[own]
        ok = True
        for idx in np.unique(covered[covered >= 0]):
            o = objects[idx]
            still = o["visible_count"] - int((covered == idx).sum())
            if still < MIN_VISIBLE * o["full_count"]:
                ok = False
                break
        if not ok:
            continue
        # Keep contrast against what is actually underneath.
        under = img[y0:y0 + oh, x0:x0 + ow][soft >= 0.5].mean(axis=0)
        if np.abs(color[soft >= 0.5].mean(axis=0) - under).mean() < 40:
            continue
        for idx in np.unique(covered[covered >= 0]):
            objects[idx]["visible_count"] -= int((covered == idx).sum())
        occupancy[own] = len(objects)
        region = img[y0:y0 + oh, x0:x0 + ow]
        region[:] = region * (1 - soft[..., None]) + color * soft[..., None]
        objects.append({"cls": cls, "full_count": int(own.sum()),
                        "visible_count": int(own.sum())})

    anns = []
    for idx, o in enumerate(objects):
        vis = occupancy == idx
        anns.append({"cls": o["cls"], "mask": vis, "crowd": False})
    if crowd is not None:
        vis = crowd & (occupancy < 0)
        if vis.sum() > 0:
            anns.append({"cls": CLASS_NAMES.index("disc"), "mask": vis, "crowd": True})
    img = np.clip(np.round(img), 0, 255).astype(np.uint8)
    return img, anns


def write_split(out, split, count, seed, quality, stats):
    rng = np.random.default_rng([seed, SPLITS[split]])
    img_dir = out / "images" / split
    img_dir.mkdir(parents=True, exist_ok=True)
    lbl_dir = out / "labels" / split
    if split != "calib":
        lbl_dir.mkdir(parents=True, exist_ok=True)
    coco = {
        "info": {"description": f"lowbit synthetic shapes, split {split}, seed {seed}",
                 "version": "1.0"},
        "licenses": [],
        "images": [],
        "annotations": [],
        "categories": [{"id": i + 1, "name": n, "supercategory": "shape"}
                       for i, n in enumerate(CLASS_NAMES)],
    }
    ann_id = 1
    for k in range(count):
        image_id = ID_BASE[split] + k
        img, anns = make_image(rng)
        h, w = img.shape[:2]
        name = f"{image_id:012d}.jpg"
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        (img_dir / name).write_bytes(buf.tobytes())
        if split == "calib":
            continue
        coco["images"].append({"id": image_id, "file_name": name, "width": w, "height": h})
        lines = []
        for a in anns:
            x, y, bw, bh = box_of(a["mask"])
            area = int(a["mask"].sum())
            entry = {"id": ann_id, "image_id": image_id, "category_id": a["cls"] + 1,
                     "bbox": [x, y, bw, bh], "area": area, "iscrowd": 1 if a["crowd"] else 0}
            entry["segmentation"] = rle_encode(a["mask"]) if a["crowd"] else polygons_of(a["mask"])
            coco["annotations"].append(entry)
            ann_id += 1
            key = "crowd" if a["crowd"] else (
                "small" if area < SMALL_AREA else "large" if area > LARGE_AREA else "medium")
            stats[split][key] = stats[split].get(key, 0) + 1
            if not a["crowd"]:
                stats[split]["per_class"][CLASS_NAMES[a["cls"]]] += 1
                lines.append(f"{a['cls']} {(x + bw / 2) / w:.6f} {(y + bh / 2) / h:.6f} "
                             f"{bw / w:.6f} {bh / h:.6f}")
        (lbl_dir / (name[:-4] + ".txt")).write_text("".join(l + "\n" for l in lines))
    if split != "calib":
        (out / f"instances_{split}.json").write_text(json.dumps(coco, separators=(",", ":")))


def bundle(out, assets):
    import shutil
    val_dir, calib_dir = assets / "val", assets / "calib"
    for d in (val_dir / "images", calib_dir / "images"):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    for src in sorted((out / "images" / "val").glob("*.jpg")):
        shutil.copyfile(src, val_dir / "images" / src.name)
    shutil.copyfile(out / "instances_val.json", val_dir / "instances_val.json")
    names = sorted(p.name for p in (out / "images" / "calib").glob("*.jpg"))
    for n in names:
        shutil.copyfile(out / "images" / "calib" / n, calib_dir / "images" / n)
    list_name = f"calib{len(names)}.txt"
    (calib_dir / list_name).write_text("".join(f"images/{n}\n" for n in names))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--val", type=int, default=250)
    ap.add_argument("--calib", type=int, default=100)
    ap.add_argument("--quality", type=int, default=80, help="JPEG quality")
    ap.add_argument("--assets", type=Path, help="also copy val and calib into this folder")
    args = ap.parse_args()

    cv2.setNumThreads(1)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    stats = {}
    for split, count in (("train", args.train), ("val", args.val), ("calib", args.calib)):
        stats[split] = {"images": count, "per_class": {n: 0 for n in CLASS_NAMES}}
        write_split(out, split, count, args.seed, args.quality, stats)
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASS_NAMES))
    (out / "shapes.yaml").write_text(
        f"path: {out}\ntrain: images/train\nval: images/val\nnames:\n{names}")
    (out / "stats.json").write_text(json.dumps(stats, indent=1) + "\n")
    if args.assets:
        bundle(out, args.assets)
    print(json.dumps(stats))


if __name__ == "__main__":
    main()
