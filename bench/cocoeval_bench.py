"""Benchmark: `lowbit cocoeval` vs pycocotools vs faster-coco-eval on a COCO-val-sized case.

The case mimics COCO val2017 + a YOLO detector at conf 0.001: 5000 images, 80 categories,
~36k GT boxes (with crowds and mask-like areas), up to 300 detections per image. Each tool runs
end to end from the two JSON files (load GT, load results, evaluate, accumulate, summarize), in
the same run, on the same files; the script prints wall times, the ratios and the largest stat
difference. faster-coco-eval is pip-installed into the current Python on demand (bench only).

    .venv/bin/python bench/cocoeval_bench.py --lowbit build/lowbit [--images 5000] [--repeat 3]
"""
import argparse
import contextlib
import importlib
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_big_case(seed, n_images, n_cats, gt_per_image, max_dets):
    rng = np.random.default_rng(seed)
    cat_ids = np.sort(rng.choice(np.arange(1, 91), size=n_cats, replace=False))
    img_ids = np.sort(rng.choice(np.arange(1, 600000), size=n_images, replace=False))
    wh = rng.integers(200, 641, size=(n_images, 2))
    images = [{"id": int(i), "file_name": f"{int(i):012d}.jpg", "width": int(w), "height": int(h)}
              for i, (w, h) in zip(img_ids, wh)]
    categories = [{"id": int(c), "name": f"c{int(c)}"} for c in cat_ids]
    # COCO-like skew: some categories are much more frequent (person ~ 30%).
    cat_p = rng.pareto(1.2, n_cats) + 0.05
    cat_p /= cat_p.sum()

    n_gt = rng.poisson(gt_per_image, n_images)
    n_gt[rng.random(n_images) < 0.01] = 0  # ~48 images without annotations in val2017
    gi = np.repeat(np.arange(n_images), n_gt)
    G = len(gi)
    iw, ih = wh[gi, 0].astype(float), wh[gi, 1].astype(float)
    gw = np.minimum(iw, np.exp(rng.normal(3.6, 1.0, G)))
    gh = np.minimum(ih, gw * np.exp(rng.normal(0, 0.5, G)))
    gx = rng.random(G) * (iw - gw)
    gy = rng.random(G) * (ih - gh)
    gc = cat_ids[rng.choice(n_cats, G, p=cat_p)]
    garea = gw * gh * rng.uniform(0.5, 0.95, G)
    crowd = rng.random(G) < 0.008
    anns = [{"id": k + 1, "image_id": int(img_ids[gi[k]]), "category_id": int(gc[k]),
             "bbox": [float(gx[k]), float(gy[k]), float(gw[k]), float(gh[k])],
             "area": float(garea[k]), "iscrowd": int(crowd[k])} for k in range(G)]

    n_dt = rng.integers(0, max_dets + 1, n_images)
    di = np.repeat(np.arange(n_images), n_dt)
    D = len(di)
    # 25% of detections jitter a GT box of the image (when it has one), the rest are clutter.
    first_gt = np.concatenate([[0], np.cumsum(n_gt)])
    has_gt = n_gt[di] > 0
    pick = first_gt[di] + (rng.random(D) * np.maximum(n_gt[di], 1)).astype(int)
    near = has_gt & (rng.random(D) < 0.25)
    pick = np.where(near, pick, 0)
    w_img, h_img = wh[di, 0].astype(float), wh[di, 1].astype(float)
    rw = np.minimum(w_img, np.exp(rng.normal(3.4, 1.1, D)))
    rh = np.minimum(h_img, rw * np.exp(rng.normal(0, 0.6, D)))
    rx, ry = rng.random(D) * (w_img - rw), rng.random(D) * (h_img - rh)
    j = rng.normal(0, 0.1, (D, 4))
    dx = np.where(near, gx[pick] + j[:, 0] * gw[pick], rx) if G else rx
    dy = np.where(near, gy[pick] + j[:, 1] * gh[pick], ry) if G else ry
    dw = np.where(near, gw[pick] * (1 + j[:, 2]), rw) if G else rw
    dh = np.where(near, gh[pick] * (1 + j[:, 3]), rh) if G else rh
    dc = cat_ids[rng.choice(n_cats, D, p=cat_p)]
    if G:
        dc = np.where(near & (rng.random(D) < 0.9), gc[pick], dc)
    score = np.where(near, rng.beta(4, 2, D), rng.beta(1, 8, D))
    dets = [{"image_id": int(img_ids[di[k]]), "category_id": int(dc[k]),
             "bbox": [round(float(dx[k]), 3), round(float(dy[k]), 3),
                      round(float(max(dw[k], 0.1)), 3), round(float(max(dh[k], 0.1)), 3)],
             "score": round(float(score[k]), 5)} for k in range(D)]
    return {"images": images, "annotations": anns, "categories": categories}, dets


def run_pycocotools_like(mod_coco, mod_eval, gt_path, dt_path, cls_name="COCOeval"):
    coco_mod = importlib.import_module(mod_coco)
    eval_mod = importlib.import_module(mod_eval)
    with contextlib.redirect_stdout(io.StringIO()):
        t, c = time.perf_counter(), time.process_time()
        gt = coco_mod.COCO(gt_path)
        dt = gt.loadRes(dt_path)
        ev = getattr(eval_mod, cls_name)(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        return (time.perf_counter() - t, time.process_time() - c), [float(s) for s in ev.stats]


def run_lowbit(binary, gt_path, dt_path, out_path, threads):
    cmd = [binary, "cocoeval", "--gt", gt_path, "--dt", dt_path, "--json", out_path]
    if threads:
        cmd += ["--threads", str(threads)]
    t = time.perf_counter()
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, capture_output=True, text=True)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    el = (time.perf_counter() - t,
          (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime))
    if p.returncode != 0:
        sys.exit(f"lowbit cocoeval failed: {p.stderr}")
    with open(out_path) as f:
        return el, json.load(f)["stats"], p.stderr.strip()


def ensure_faster_coco_eval():
    try:
        import faster_coco_eval  # noqa: F401
        return True
    except ImportError:
        pass
    print("installing faster-coco-eval into", sys.prefix, "(bench only)", file=sys.stderr)
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "faster-coco-eval"])
    if r.returncode != 0:
        return False
    importlib.invalidate_caches()
    try:
        import faster_coco_eval  # noqa: F401
        return True
    except ImportError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lowbit", default=os.environ.get("LOWBIT_BIN", "build/lowbit"))
    ap.add_argument("--images", type=int, default=5000)
    ap.add_argument("--cats", type=int, default=80)
    ap.add_argument("--gt-per-image", type=float, default=7.3)
    ap.add_argument("--max-dets", type=int, default=300)
    ap.add_argument("--repeat", type=int, default=1, help="lowbit runs (best is reported)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--no-faster", action="store_true", help="skip faster-coco-eval")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        gt, dets = make_big_case(args.seed, args.images, args.cats, args.gt_per_image,
                                 args.max_dets)
        gt_path, dt_path = os.path.join(tmp, "gt.json"), os.path.join(tmp, "dt.json")
        with open(gt_path, "w") as f:
            json.dump(gt, f)
        with open(dt_path, "w") as f:
            json.dump(dets, f)
        print(f"case: {len(gt['images'])} images, {len(gt['categories'])} categories, "
              f"{len(gt['annotations'])} GT, {len(dets)} detections "
              f"(dt.json {os.path.getsize(dt_path) / 1e6:.1f} MB; generated in "
              f"{time.perf_counter() - t:.1f} s)")

        lb = [run_lowbit(args.lowbit, gt_path, dt_path, os.path.join(tmp, "o.json"),
                         args.threads) for _ in range(max(1, args.repeat))]
        lb_wall = min(x[0][0] for x in lb)
        lb_cpu = min(x[0][1] for x in lb)
        lb_stats = lb[0][1]
        # Wall time is what a user waits; CPU time (user + sys) is robust to a busy machine.
        print(f"{'':18} {'wall s':>8} {'cpu s':>8}   ratio wall / cpu (peer / lowbit)")
        print(f"{'lowbit cocoeval':18} {lb_wall:8.2f} {lb_cpu:8.2f}   ({lb[0][2]})")

        def report(name, times, stats):
            wall, cpu = times
            diff = max(abs(a - b) for a, b in zip(lb_stats, stats))
            print(f"{name:18} {wall:8.2f} {cpu:8.2f}   lowbit is {wall / lb_wall:.1f}x / "
                  f"{cpu / lb_cpu:.1f}x faster; max |stat difference| {diff:.3g}")

        py_times, py_stats = run_pycocotools_like("pycocotools.coco", "pycocotools.cocoeval",
                                                  gt_path, dt_path)
        report("pycocotools", py_times, py_stats)
        if not args.no_faster and ensure_faster_coco_eval():
            fc_times, fc_stats = run_pycocotools_like("faster_coco_eval",
                                                      "faster_coco_eval",
                                                      gt_path, dt_path, "COCOeval_faster")
            report("faster-coco-eval", fc_times, fc_stats)
        elif not args.no_faster:
            print("faster-coco-eval: not available (pip install failed)")
        print("stats (lowbit):", " ".join(f"{s:.4f}" for s in lb_stats))


if __name__ == "__main__":
    main()
