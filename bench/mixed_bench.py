#!/usr/bin/env python3
"""Mixed precision on the bundled model: the search's Pareto front against top-K by sensitivity
and random assignments at equal weight-byte budgets (issue 15, item 5).

  1. `lowbit mixed --formats int4w int8 --weight-method gptq --budget-bytes 0.6x
     --max-drop 0.01 --front-points F`: the chosen model plus F more states of the search path,
     each quantized and evaluated for real (the measured front). Its Pareto JSON gives every
     candidate node's bytes and sensitivity per format.
  2. For each measured search point's weight bytes B (the budget), two baselines with the same
     INT4/INT8 choice per node and the same bytes accounting:
       - top-K: every node int4w, then nodes promoted to int8 in order of decreasing w4a8
         sensitivity while the model stays within B (K = how many fit);
       - random: the same with the nodes in a random order (--seeds seeds).
     Each is written by `lowbit quantize --assign` (GPTQ for the int4w nodes) and evaluated by
     `lowbit eval` on the same images.
  3. A markdown table: budget, then mAP50-95 of search / top-K / random (mean, min..max).

    .venv/bin/python bench/mixed_bench.py --lowbit build/lowbit [--work DIR] [--max-images 250]
        [--front-points 3] [--seeds 3] [--calib FILE.npy] [--json out.json]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import tempfile


def run(cmd):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(map(str, cmd))}\n{r.stderr}")
    return r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lowbit", default="build/lowbit")
    ap.add_argument("--work", default="")
    ap.add_argument("--max-images", type=int, default=250)
    ap.add_argument("--front-points", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--budget", default="0.6x")
    ap.add_argument("--max-drop", default="0.01")
    ap.add_argument("--calib", default="", help="calibration .npy (default: the bundled list "
                    "letterboxed to 320 by `lowbit calib`)")
    ap.add_argument("--json", default="")
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="mixed-bench-")
    os.makedirs(work, exist_ok=True)
    lb = a.lowbit
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    calib = a.calib or os.path.join(work, "calib.npy")
    if not os.path.exists(calib):
        run([lb, "calib", "--list", os.path.join(src, "assets", "calib", "calib100.txt"),
             "--imgsz", 320, "--out", calib])
    out = os.path.join(work, "mixed.onnx")
    cmd = [lb, "mixed", "--calib", calib, "--formats", "int4w", "int8", "--weight-method", "gptq",
           "--budget-bytes", a.budget, "--max-drop", a.max_drop, "--max-images", a.max_images,
           "--front-points", a.front_points, "--sensitivity-dir", os.path.join(work, "sens"),
           "--out", out]
    print("$", " ".join(map(str, cmd)), file=sys.stderr)
    summary = json.loads(run(cmd))
    pareto = json.load(open(os.path.join(work, "mixed.pareto.json")))
    fp32 = pareto["fp32_map50_95"]
    int8 = pareto["int8"]
    other = pareto["other_weight_bytes"]
    nodes = pareto["nodes"]

    def fmt(n, f):
        return next(c for c in n["choices"] if c["format"] == f)

    def assignment(order, budget):
        chosen = {n["name"]: "int4w" for n in nodes}
        total = other + sum(fmt(n, "int4w")["bytes"] for n in nodes)
        for n in order:
            extra = fmt(n, "int8")["bytes"] - fmt(n, "int4w")["bytes"]
            if total + extra > budget:
                break
            chosen[n["name"]] = "int8"
            total += extra
        return {"default": "int8", "nodes": chosen}, sum(v == "int8" for v in chosen.values())

    def measure(asg, tag):
        p = os.path.join(work, tag + ".json")
        json.dump(asg, open(p, "w"))
        m = os.path.join(work, tag + ".onnx")
        q = json.loads(run([lb, "quantize", "--assign", p, "--calib", calib, "--weight-method",
                            "gptq", "--out", m]))
        r = run([lb, "eval", m, "--max-images", a.max_images])
        ap_ = float(next(l for l in r.splitlines() if l.startswith("mAP50-95")).split()[1])
        os.remove(m)
        return q["weight_bytes"], ap_

    by_sens = sorted(nodes, key=lambda n: -fmt(n, "int4w")["cost"])
    rows = []
    for pt in pareto["points"]:
        if pt["source"] != "search":
            continue
        b = pt["weight_bytes"]
        asg, k = assignment(by_sens, b)
        tb, tm = measure(asg, f"topk_{b}")
        rnd = []
        for s in range(a.seeds):
            order = list(nodes)
            random.Random(s).shuffle(order)
            asg_r, _ = assignment(order, b)
            rnd.append(measure(asg_r, f"rand{s}_{b}"))
        row = {"budget_bytes": b, "ratio_vs_int8": b / int8["weight_bytes"],
               "search": pt["map50_95"], "search_int4_share": pt["int4w_weight_share"],
               "chosen": pt["chosen"], "topk": tm, "topk_k": k, "topk_bytes": tb,
               "random": [m for _, m in rnd], "random_bytes": [x for x, _ in rnd]}
        rows.append(row)
        print(json.dumps(row), file=sys.stderr)
    print(f"FP32 {fp32:.4f}; INT8 {int8['map50_95']:.4f} at {int8['weight_bytes']} weight bytes; "
          f"{a.max_images} val images; INT4 nodes GPTQ\n")
    print("| weight bytes (x INT8) | search | top-K by w4a8 sensitivity | random (mean, min..max) |")
    print("|---|---|---|---|")
    for r in rows:
        rm = sum(r["random"]) / len(r["random"])
        mark = " (chosen)" if r["chosen"] else ""
        print(f"| {r['budget_bytes']} ({r['ratio_vs_int8']:.3f}x) | {r['search']:.4f}{mark} | "
              f"{r['topk']:.4f} (K={r['topk_k']}) | {rm:.4f} ({min(r['random']):.4f}.."
              f"{max(r['random']):.4f}) |")
    if a.json:
        json.dump({"summary": summary, "rows": rows, "fp32": fp32, "int8": int8},
                  open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
