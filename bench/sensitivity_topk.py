"""Is lowbit's sensitivity ranking useful? Top-K vs K random nodes kept in high precision.

For each mode, on one model and one calibration set:
  1. `lowbit sensitivity` ranks the quantizable nodes (output-mse by default);
  2. `lowbit schemes` turns the ranking into top-K exclusion lists;
  3. K random quantizable nodes are drawn (seeds 0, 1, 2) for the same Ks;
  4. `lowbit candidates` quantizes every scheme from one calibration and evaluates it on the
     validation set (plus K = 0, everything quantized);
  5. recovery = (mAP(scheme) - mAP(K=0)) / (mAP(FP32) - mAP(K=0)), the share of the quantization
     drop that keeping the K nodes in high precision wins back;
  6. mse-recovery = (MSE(K=0) - MSE(scheme)) / MSE(K=0), the share of the output error removed.
     MSE is the mean squared difference of every model output from the FP32 model's, over all
     elements and the first --mse-images validation images (default 50; 0 = skip), each model
     run in ONNX Runtime (CPU provider, graph optimizations off: ORT's optimizer rejects some FP8
     Q/DQ patterns). The images are letterboxed by `lowbit calib`, so exactly as lowbit
     evaluates; the FP32 outputs are computed once and cached under --work.
With lowbit's default calibration the whole mAP drop is about 0.002, within the noise of mAP on
the 250 bundled val images, so the mAP recovery alone says little; the output MSE measures the
same thing with far less noise. The table compares top-K with the mean of the random draws on
both. Everything goes under --work; a rerun skips each lowbit step whose command line, inputs
and lowbit binary are unchanged and whose outputs exist, and each MSE whose model is unchanged.
Needs numpy and onnxruntime for the MSE (re-runs itself under .venv/bin/python when missing).

    python3 bench/sensitivity_topk.py --lowbit build/lowbit [--modes fp8 int8] [--ks 5 10]
        [--calibration-method entropy] [--metric output-mse] [--images 32] [--max-images 0]
        [--mse-images 50] [--threads 1] [--work runs/sensitivity-topk]
"""
import argparse
import glob
import hashlib
import json
import os
import random
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


VENV_PY = os.path.join(ROOT, ".venv", "bin", "python")


def log(msg):
    print(f"[sensitivity_topk] {msg}", file=sys.stderr, flush=True)


def run(cmd):
    log(" ".join(cmd))
    t0 = time.time()
    # The bundled val set is this checkout's, also for a lowbit binary copied elsewhere.
    env = dict(os.environ)
    env.setdefault("LOWBIT_ASSETS", os.path.join(ROOT, "assets"))
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.time() - t0


def file_digest(path):
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def file_stamp(path):
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


class Steps:
    """Runs a lowbit command unless an identical one (command line, inputs' content, binary)
    already finished and its outputs still exist; records each step under WORK/.steps/."""

    def __init__(self, work, lowbit):
        self.dir = os.path.join(work, ".steps")
        os.makedirs(self.dir, exist_ok=True)
        self.lowbit = file_stamp(lowbit)

    def __call__(self, cmd, outputs, inputs=()):
        key = json.dumps({"cmd": cmd, "lowbit": self.lowbit,
                          "inputs": {p: file_digest(p) for p in inputs}}, sort_keys=True)
        stamp = os.path.join(self.dir, hashlib.sha1(json.dumps(cmd).encode()).hexdigest() + ".json")
        if os.path.exists(stamp) and all(os.path.exists(o) for o in outputs):
            with open(stamp) as f:
                rec = json.load(f)
            if rec.get("key") == key:
                log(f"skip (unchanged): {' '.join(cmd)}")
                return rec["seconds"]
        secs = run(cmd)
        with open(stamp + ".tmp", "w") as f:
            json.dump({"key": key, "seconds": secs}, f)
        os.replace(stamp + ".tmp", stamp)
        return secs


def map5095(path):
    with open(path) as f:
        return json.load(f)["metrics"]["mAP_50_95"]


class OutputMSE:
    """Mean squared error of all outputs of a model vs the FP32 model's, in ONNX Runtime."""

    def __init__(self, npy, fp32_model, work):
        import numpy as np
        import onnxruntime as ort
        self.np, self.ort = np, ort
        self.x = np.load(npy)
        self.cache_path = os.path.join(work, "mse-cache.json")
        self.cache = {}
        if os.path.exists(self.cache_path):
            with open(self.cache_path) as f:
                self.cache = json.load(f)
        # The reference depends on the images and the FP32 model: cache its outputs once.
        tag = hashlib.sha1((file_digest(npy) + file_digest(fp32_model)).encode()).hexdigest()[:16]
        ref_path = os.path.join(work, f"mse-fp32-{tag}.npz")
        if os.path.exists(ref_path):
            z = np.load(ref_path)
            self.names = [str(n) for n in z["__names__"]]
            self.ref = [z[f"o{i}"] for i in range(len(self.names))]
        else:
            log(f"FP32 outputs on {len(self.x)} images: {fp32_model}")
            self.names, self.ref = self._run(fp32_model)
            np.savez(ref_path + ".tmp.npz", __names__=np.array(self.names),
                     **{f"o{i}": r for i, r in enumerate(self.ref)})
            os.replace(ref_path + ".tmp.npz", ref_path)
        self.ref_tag = tag

    def _run(self, model):
        so = self.ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.graph_optimization_level = self.ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        s = self.ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
        inp = s.get_inputs()[0].name
        names = [o.name for o in s.get_outputs()]
        outs = [s.run(None, {inp: self.x[i:i + 1]}) for i in range(len(self.x))]
        return names, [self.np.concatenate([o[k] for o in outs]) for k in range(len(names))]

    def __call__(self, model):
        key = json.dumps([os.path.abspath(model), file_stamp(model), self.ref_tag])
        if key in self.cache:
            return self.cache[key]
        names, ys = self._run(model)
        if names != self.names:
            sys.exit(f"{model}: outputs {names} differ from the FP32 model's {self.names}")
        np = self.np
        se = sum(float(np.sum((y.astype(np.float64) - r.astype(np.float64)) ** 2))
                 for y, r in zip(ys, self.ref))
        mse = se / sum(r.size for r in self.ref)
        log(f"output MSE {mse:.6g}: {os.path.basename(model)}")
        self.cache[key] = mse
        with open(self.cache_path + ".tmp", "w") as f:
            json.dump(self.cache, f, indent=1)
        os.replace(self.cache_path + ".tmp", self.cache_path)
        return mse


def candidate_model(out_dir, mode, k):
    found = glob.glob(os.path.join(out_dir, f"*-{mode}-k{k}.onnx"))
    if len(found) != 1:
        sys.exit(f"expected one *-{mode}-k{k}.onnx in {out_dir}, found {found}")
    return found[0]


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
    ap.add_argument("--mse-images", type=int, default=50,
                    help="first N val images (assets/val/images, sorted) for the output-MSE "
                         "recovery: mean squared error of all outputs vs FP32 in ONNX Runtime "
                         "(0 = skip)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--work", default=os.path.join(ROOT, "runs", "sensitivity-topk"))
    a = ap.parse_args()

    if a.mse_images > 0:
        try:
            import numpy  # noqa: F401
            import onnxruntime  # noqa: F401
        except ImportError:
            venv = os.path.dirname(os.path.dirname(VENV_PY))
            if os.path.exists(VENV_PY) and os.path.realpath(sys.prefix) != os.path.realpath(venv):
                log(f"numpy/onnxruntime missing: re-running under {VENV_PY}")
                os.execv(VENV_PY, [VENV_PY, os.path.abspath(__file__), *sys.argv[1:]])
            sys.exit("the output MSE needs numpy and onnxruntime (or --mse-images 0)")

    lb = a.lowbit
    os.makedirs(a.work, exist_ok=True)
    step = Steps(a.work, lb)
    calib = os.path.join(a.work, "calib.npy")
    step([lb, "calib", "--list", a.calib_list, "--imgsz", str(a.imgsz), "--out", calib],
         [calib], [a.calib_list])
    method = ["--calibration-method", a.calibration_method] if a.calibration_method else []
    threads = ["--threads", str(a.threads)] if a.threads > 0 else []
    evalargs = ["--max-images", str(a.max_images)]

    fp32 = os.path.join(a.work, "fp32.json")
    step([lb, "eval", a.model, *evalargs, *threads, "--out", fp32], [fp32], [a.model])
    base = map5095(fp32)

    mse = None
    if a.mse_images > 0:
        val = sorted(glob.glob(os.path.join(ROOT, "assets", "val", "images", "*")))[:a.mse_images]
        if not val:
            sys.exit("no images in assets/val/images for the output MSE")
        lst = os.path.join(a.work, "mse-images.txt")
        with open(lst, "w") as f:
            f.write("".join(os.path.abspath(v) + "\n" for v in val))
        npy = os.path.join(a.work, "mse-images.npy")
        step([lb, "calib", "--list", lst, "--imgsz", str(a.imgsz), "--out", npy], [npy], [lst])
        mse = OutputMSE(npy, a.model, a.work)

    table = []
    for mode in a.modes:
        md = os.path.join(a.work, mode)
        report = os.path.join(md, "sensitivity", "report.json")
        sens_s = step([lb, "sensitivity", a.model, "--mode", mode, "--calib", calib, "--images",
                       str(a.images), "--metric", a.metric, *method, *threads, "--out", report],
                      [report], [a.model, calib])
        with open(report) as f:
            rep = json.load(f)
        nodes = [n["node"] for n in rep["nodes"]]

        # Top-K schemes from lowbit's ranking (K = 0 too: the all-quantized reference).
        top_dir = os.path.join(md, "schemes-top")
        step([lb, "schemes", "--report", report, "--ks", "0", *map(str, a.ks), "--out-dir",
              top_dir, "--model", a.model],
             [os.path.join(top_dir, f"nodes_to_exclude_k{k}.txt") for k in [0, *a.ks]],
             [report, a.model])
        dirs = {"top": top_dir}
        for d in range(a.draws):
            rd = os.path.join(md, f"schemes-random{d}")
            os.makedirs(rd, exist_ok=True)
            rng = random.Random(1000 * d + 17)
            for k in a.ks:
                with open(os.path.join(rd, f"nodes_to_exclude_k{k}.txt"), "w") as f:
                    f.write("".join(n + "\n" for n in rng.sample(nodes, k)))
            dirs[f"random{d}"] = rd

        maps, mses = {}, {}
        for name, sd in dirs.items():
            ks = ["0", *map(str, a.ks)] if name == "top" else list(map(str, a.ks))
            out = os.path.join(md, f"candidates-{name}")
            res = os.path.join(md, f"results-{name}")
            results = [os.path.join(res, f"{mode}_k{k}.json") for k in ks]
            stem = os.path.splitext(os.path.basename(a.model))[0]
            models = [os.path.join(out, f"{stem}-{mode}-k{k}.onnx") for k in ks]
            lists = [os.path.join(sd, f"nodes_to_exclude_k{k}.txt") for k in ks]
            step([lb, "candidates", a.model, "--schemes", sd, "--mode", mode, "--ks", *ks,
                  "--calib", calib, *method, *threads, *evalargs, "--out-dir", out,
                  "--results-dir", res],
                 results + (models if mse else []), [a.model, calib, *lists])
            for k, r in zip(ks, results):
                maps[(name, int(k))] = map5095(r)
                if mse:
                    mses[(name, int(k))] = mse(candidate_model(out, mode, k))

        q = maps[("top", 0)]
        drop = base - q

        def rec(m):
            return (m - q) / drop if drop > 0 else float("nan")

        m0 = mses.get(("top", 0))

        def mse_rec(e):
            return (m0 - e) / m0 if m0 else float("nan")

        for k in a.ks:
            top = maps[("top", k)]
            rnd = [maps[(f"random{d}", k)] for d in range(a.draws)]
            rmean = sum(rnd) / len(rnd)
            row = {"mode": mode, "k": k, "fp32": base, "k0": q, "top": top,
                   "random": rnd, "random_mean": rmean, "recovery_top": rec(top),
                   "recovery_random": rec(rmean), "sensitivity_s": sens_s,
                   "cost": rep.get("cost", {})}
            if mse:
                mtop = mses[("top", k)]
                mrnd = [mses[(f"random{d}", k)] for d in range(a.draws)]
                mrmean = sum(mrnd) / len(mrnd)
                row.update({"mse_images": a.mse_images, "mse_k0": m0, "mse_top": mtop,
                            "mse_random": mrnd, "mse_random_mean": mrmean,
                            "mse_recovery_top": mse_rec(mtop),
                            "mse_recovery_random": mse_rec(mrmean),
                            "mse_recovery_random_draws": [mse_rec(e) for e in mrnd]})
            table.append(row)

    with open(os.path.join(a.work, "topk.json"), "w") as f:
        json.dump(table, f, indent=2)
    print(f"FP32 mAP50-95 {base:.4f}; method {a.calibration_method or 'default'}, "
          f"metric {a.metric}" + (f"; output MSE vs FP32 on {a.mse_images} val images (ORT)"
                                  if mse else ""))
    head = ["mode", "K", "all quantized", "top-K", "random K (mean of draws)", "recovery top",
            "recovery random", "top wins"]
    if mse:
        head += ["output MSE K=0", "top-K MSE", "random K MSE (mean of draws)",
                 "mse-recovery top", "mse-recovery random", "top wins (mse)"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in table:
        cells = [r["mode"], str(r["k"]), f"{r['k0']:.4f}", f"{r['top']:.4f}",
                 f"{r['random_mean']:.4f} ({', '.join(f'{x:.4f}' for x in r['random'])})",
                 f"{r['recovery_top']:.2f}", f"{r['recovery_random']:.2f}",
                 "yes" if r["top"] > r["random_mean"] else "NO"]
        if mse:
            cells += [f"{r['mse_k0']:.5f}", f"{r['mse_top']:.5f}",
                      f"{r['mse_random_mean']:.5f} "
                      f"({', '.join(f'{x:.5f}' for x in r['mse_random'])})",
                      f"{r['mse_recovery_top']:.2f}", f"{r['mse_recovery_random']:.2f}",
                      "yes" if r["mse_top"] < r["mse_random_mean"] else "NO"]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
