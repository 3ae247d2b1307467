"""Which sensitivity metric's top-K improves mAP? (issue 15 item 4)

For each mode (int8, w4a8) on the bundled model: rank the quantizable nodes with
`lowbit sensitivity --metric output-mse` and `--metric detection` (the task-aware metric on
decoded detections), keep the top K of each in float (`quantize --exclude-nodes-file`), and K
random nodes (several seeds); evaluate every model with `lowbit eval` (which records a seeded
bootstrap of mAP50-95 over images) and decide each difference by the paired bootstrap (same
resampled image sets): a difference counts only when its 95 % interval excludes 0.
Each mode is ranked by its own sweep (`sensitivity --mode int8|w4a8`), and its random K are
drawn from the nodes that sweep measures; `--w4a8-ranked-by int8` ranks w4a8 with the int8 sweep
instead (the bench's first version, before `sensitivity --mode w4a8`). Everything goes under
--work; files already there are reused.

    python3 bench/task_metric_topk.py --lowbit build/lowbit [--modes int8 w4a8] [--ks 10]
        [--seeds 0 1 2] [--images 16] [--max-images 250] [--threads 2] [--work runs/task-topk]
        [--w4a8-ranked-by w4a8|int8]
"""
import argparse
import json
import os
import random
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    print("[task_metric_topk] " + " ".join(cmd), file=sys.stderr, flush=True)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def percentile(v, q):
    v = sorted(v)
    pos = q / 100 * (len(v) - 1)
    i = int(pos)
    if i + 1 >= len(v):
        return v[-1]
    return v[i] + (v[i + 1] - v[i]) * (pos - i)


def paired(a, b):
    """a - b: full-set difference and the 95 % interval of the per-resample differences."""
    ba, bb = a["bootstrap"], b["bootstrap"]
    assert ba["image_ids"] == bb["image_ids"] and ba["seed"] == bb["seed"]
    d = [x - y for x, y in zip(ba["map50_95"], bb["map50_95"])]
    return (a["metrics"]["mAP_50_95"] - b["metrics"]["mAP_50_95"], percentile(d, 2.5),
            percentile(d, 97.5))


def fmt_diff(t):
    diff, lo, hi = t
    mark = "**" if lo > 0 or hi < 0 else ""
    return f"{mark}{diff:+.4f}{mark} [{lo:+.4f}, {hi:+.4f}]"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "lowbit"))
    ap.add_argument("--model", default=os.path.join(ROOT, "assets", "shapes-yolov10m-w0p1875.onnx"))
    ap.add_argument("--modes", nargs="+", default=["int8", "w4a8"])
    ap.add_argument("--ks", nargs="+", type=int, default=[10])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--max-images", type=int, default=250)
    ap.add_argument("--threads", default="2")
    ap.add_argument("--work", default=os.path.join("runs", "task-topk"))
    ap.add_argument("--w4a8-ranked-by", choices=["w4a8", "int8"], default="w4a8",
                    help="the sensitivity sweep that ranks (and draws random nodes for) w4a8")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    calib = os.path.join(ROOT, "assets", "calib", "calib100.txt")

    def evaluate(onnx, out):
        if not os.path.exists(out):
            run([a.lowbit, "eval", onnx, "--max-images", str(a.max_images), "--out", out,
                 "--threads", a.threads])
        return json.load(open(out))

    def sweep_mode(mode):
        return a.w4a8_ranked_by if mode == "w4a8" else mode

    ranks = {}  # (sweep mode, metric) -> nodes, most sensitive first
    for mode in sorted({sweep_mode(m) for m in a.modes}):
        for metric in ["output-mse", "detection"]:
            rep = os.path.join(a.work, f"sens-{mode}-{metric}.json")
            if not os.path.exists(rep):
                run([a.lowbit, "sensitivity", a.model, "--mode", mode, "--metric", metric,
                     "--images", str(a.images), "--out", rep, "--threads", a.threads])
            ranks[mode, metric] = [n["node"] for n in json.load(open(rep))["nodes"]]
    fp32 = evaluate(a.model, os.path.join(a.work, "fp32.json"))

    def variant(mode, name, nodes):
        base = os.path.join(a.work, f"{mode}-{name}")
        onnx = base + ".onnx"
        if not os.path.exists(onnx):
            cmd = [a.lowbit, "quantize", a.model, "--mode", mode, "--calib-list", calib,
                   "--imgsz", "320", "--out", onnx]
            if nodes:
                with open(base + ".txt", "w") as f:
                    f.write("\n".join(nodes) + "\n")
                cmd += ["--exclude-nodes-file", base + ".txt"]
            run(cmd)
        return evaluate(onnx, base + ".json")

    lines = [f"FP32 mAP50-95 {fp32['metrics']['mAP_50_95']:.4f} ({a.max_images} images); "
             "differences with the 95% paired-bootstrap interval, **bold** = interval excludes 0",
             "", "| mode | K | K=0 | top-K output-mse | top-K detection | random K (mean of "
             f"{len(a.seeds)}) | detection - K=0 | detection - output-mse | detection - random "
             "(per seed) | output-mse - random (per seed) |",
             "|---|---:|---:|---:|---:|---:|---|---|---|---|"]
    for mode in a.modes:
        sm = sweep_mode(mode)
        # Variants ranked by another mode's sweep get their own file names.
        tag = "" if sm == mode else f"by{sm}-"
        all_nodes = sorted(ranks[sm, "output-mse"])
        k0 = variant(mode, "k0", [])
        for k in a.ks:
            mse = variant(mode, f"{tag}mse-k{k}", ranks[sm, "output-mse"][:k])
            det = variant(mode, f"{tag}det-k{k}", ranks[sm, "detection"][:k])
            rnd = [variant(mode, f"{tag}rand{s}-k{k}", random.Random(s).sample(all_nodes, k))
                   for s in a.seeds]
            m = lambda j: j["metrics"]["mAP_50_95"]
            lines.append(
                f"| {mode} (ranked by {sm}) | {k} | {m(k0):.4f} | {m(mse):.4f} | {m(det):.4f} | "
                f"{sum(map(m, rnd)) / len(rnd):.4f} | {fmt_diff(paired(det, k0))} | "
                f"{fmt_diff(paired(det, mse))} | "
                + "; ".join(fmt_diff(paired(det, r)) for r in rnd) + " | "
                + "; ".join(fmt_diff(paired(mse, r)) for r in rnd) + " |")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(a.work, "table.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
