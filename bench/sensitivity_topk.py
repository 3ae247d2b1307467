"""Is lowbit's sensitivity ranking useful? Top-K vs K random nodes kept in high precision.

For each mode, on one model and one calibration set:
  1. `lowbit sensitivity` ranks the quantizable nodes (output-mse by default);
  2. `lowbit schemes` turns the ranking into top-K exclusion lists;
  3. K random quantizable nodes are drawn (seeds 0, 1, 2) for the same Ks;
  4. `lowbit candidates` quantizes every scheme from one calibration and evaluates it on the
     validation set (plus K = 0, everything quantized);
  5. recovery = (mAP(scheme) - mAP(K=0)) / (mAP(FP32) - mAP(K=0)), the share of the quantization
     drop that keeping the K nodes in high precision wins back.
The table compares top-K with the mean of the random draws. Everything goes under --work.

    python3 bench/sensitivity_topk.py --lowbit build/lowbit [--modes fp8 int8] [--ks 5 10]
        [--calibration-method entropy] [--metric output-mse] [--images 32] [--max-images 0]
"""
import argparse
import json
import os
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def log(msg):
    print(f"[sensitivity_topk] {msg}", file=sys.stderr, flush=True)


def run(cmd):
    log(" ".join(cmd))
    t0 = time.time()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.time() - t0


def map5095(path):
    with open(path) as f:
        return json.load(f)["metrics"]["mAP_50_95"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "lowbit"))
    ap.add_argument("--model", default=os.path.join(ROOT, "assets",
                                                    "shapes-yolov10m-w0p1875-raw.onnx"))
    ap.add_argument("--calib-list", default=os.path.join(ROOT, "assets", "calib", "calib100.txt"))
    ap.add_argument("--imgsz", type=int, default=320)
    ap.add_argument("--modes", nargs="+", default=["fp8", "int8"])
    ap.add_argument("--ks", nargs="+", type=int, default=[5, 10])
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--calibration-method", default=None,
                    help="passed to sensitivity and candidates (default: lowbit's default)")
    ap.add_argument("--metric", default="output-mse")
    ap.add_argument("--images", type=int, default=32, help="sensitivity images")
    ap.add_argument("--max-images", type=int, default=0, help="val images per eval (0 = all)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "sensitivity-topk"))
    a = ap.parse_args()

    lb = a.lowbit
    os.makedirs(a.work, exist_ok=True)
    calib = os.path.join(a.work, "calib.npy")
    if not os.path.exists(calib):
        run([lb, "calib", "--list", a.calib_list, "--imgsz", str(a.imgsz), "--out", calib])
    method = ["--calibration-method", a.calibration_method] if a.calibration_method else []
    threads = ["--threads", str(a.threads)] if a.threads > 0 else []
    evalargs = ["--max-images", str(a.max_images)]

    fp32 = os.path.join(a.work, "fp32.json")
    if not os.path.exists(fp32):
        run([lb, "eval", a.model, *evalargs, *threads, "--out", fp32])
    base = map5095(fp32)

    table = []
    for mode in a.modes:
        md = os.path.join(a.work, mode)
        report = os.path.join(md, "sensitivity", "report.json")
        sens_s = run([lb, "sensitivity", a.model, "--mode", mode, "--calib", calib, "--images",
                      str(a.images), "--metric", a.metric, *method, *threads, "--out", report])
        with open(report) as f:
            rep = json.load(f)
        nodes = [n["node"] for n in rep["nodes"]]

        # Top-K schemes from lowbit's ranking (K = 0 too: the all-quantized reference).
        top_dir = os.path.join(md, "schemes-top")
        run([lb, "schemes", "--report", report, "--ks", "0", *map(str, a.ks), "--out-dir",
             top_dir, "--model", a.model])
        dirs = {"top": top_dir}
        for d in range(a.draws):
            rd = os.path.join(md, f"schemes-random{d}")
            os.makedirs(rd, exist_ok=True)
            rng = random.Random(1000 * d + 17)
            for k in a.ks:
                with open(os.path.join(rd, f"nodes_to_exclude_k{k}.txt"), "w") as f:
                    f.write("".join(n + "\n" for n in rng.sample(nodes, k)))
            dirs[f"random{d}"] = rd

        maps = {}
        for name, sd in dirs.items():
            ks = ["0", *map(str, a.ks)] if name == "top" else list(map(str, a.ks))
            out = os.path.join(md, f"candidates-{name}")
            res = os.path.join(md, f"results-{name}")
            run([lb, "candidates", a.model, "--schemes", sd, "--mode", mode, "--ks", *ks,
                 "--calib", calib, *method, *threads, *evalargs, "--out-dir", out,
                 "--results-dir", res])
            for k in ks:
                maps[(name, int(k))] = map5095(os.path.join(res, f"{mode}_k{k}.json"))

        q = maps[("top", 0)]
        drop = base - q

        def rec(m):
            return (m - q) / drop if drop > 0 else float("nan")

        for k in a.ks:
            top = maps[("top", k)]
            rnd = [maps[(f"random{d}", k)] for d in range(a.draws)]
            rmean = sum(rnd) / len(rnd)
            table.append({"mode": mode, "k": k, "fp32": base, "k0": q, "top": top,
                          "random": rnd, "random_mean": rmean, "recovery_top": rec(top),
                          "recovery_random": rec(rmean), "sensitivity_s": sens_s,
                          "cost": rep.get("cost", {})})

    with open(os.path.join(a.work, "topk.json"), "w") as f:
        json.dump(table, f, indent=2)
    print(f"FP32 mAP50-95 {base:.4f}; method {a.calibration_method or 'default'}, "
          f"metric {a.metric}")
    print("| mode | K | all quantized | top-K | random K (mean of draws) | recovery top | "
          "recovery random | top wins |")
    print("|---|---|---|---|---|---|---|---|")
    for r in table:
        print(f"| {r['mode']} | {r['k']} | {r['k0']:.4f} | {r['top']:.4f} | "
              f"{r['random_mean']:.4f} ({', '.join(f'{x:.4f}' for x in r['random'])}) | "
              f"{r['recovery_top']:.2f} | {r['recovery_random']:.2f} | "
              f"{'yes' if r['top'] > r['random_mean'] else 'NO'} |")


if __name__ == "__main__":
    main()
