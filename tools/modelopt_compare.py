#!/usr/bin/env python3
"""Side by side: NVIDIA ModelOpt ONNX PTQ vs `lowbit quantize` on the same model and data.

For each mode (INT8, FP8) both tools quantize the same float model from the same calibration
.npy with the same method; both outputs (and the float model) are evaluated with `lowbit eval`
on the same validation set. The table reports mAP50-95 and its drop vs FP32, quantization wall
time, peak RSS of the quantizing process, and the number of Q/DQ pairs (DequantizeLinear nodes,
activations + weights).

ModelOpt runs from its own virtual environment, .venv-modelopt at the repository root, which this
script creates on first use (`pip install "nvidia-modelopt[onnx]"`). On a CPU-only machine
ModelOpt calibrates with ONNX Runtime's CPU provider (`--calibration_eps cpu`).

Defaults use the bundled assets: the raw-head model assets/*-raw.onnx, the calibration list in
assets/calib/ (turned into a .npy with `lowbit calib`), and `lowbit eval`'s bundled val set.

  tools/modelopt_compare.py                       # everything with defaults
  tools/modelopt_compare.py --model M.onnx --calib calib.npy --modes int8 --no-eval

Only the standard library is used here; ONNX inspection runs inside .venv-modelopt.
"""
import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(ROOT, ".venv-modelopt")
VENV_PY = os.path.join(VENV, "bin", "python")

COUNT_QDQ = r"""
import json, sys, onnx
m = onnx.load(sys.argv[1], load_external_data=False)
inits = {i.name for i in m.graph.initializer}
q_inputs = {n.output[0]: n.input[0] for n in m.graph.node if n.op_type == "QuantizeLinear"}
act = weight = 0
for n in m.graph.node:
    if n.op_type != "DequantizeLinear":
        continue
    src = q_inputs.get(n.input[0], n.input[0])
    if src in inits:
        weight += 1
    else:
        act += 1
print(json.dumps({"activation": act, "weight": weight, "total": act + weight,
                  "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx"))}))
"""


def log(msg):
    print(f"[modelopt_compare] {msg}", file=sys.stderr, flush=True)


def ensure_modelopt(skip_install):
    """Creates .venv-modelopt with nvidia-modelopt[onnx] if needed; returns ModelOpt's version."""
    if not os.path.exists(VENV_PY):
        if skip_install:
            sys.exit(f"{VENV_PY} does not exist (and --no-install was given)")
        log(f"creating {VENV}")
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([VENV_PY, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
        log('pip install "nvidia-modelopt[onnx]" (several GB: torch, CUDA wheels, onnxruntime-gpu)')
        r = subprocess.run([VENV_PY, "-m", "pip", "install", "nvidia-modelopt[onnx]"])
        if r.returncode != 0:
            sys.exit("pip install nvidia-modelopt[onnx] failed; see the pip output above")
    r = subprocess.run([VENV_PY, "-c", "import modelopt, modelopt.onnx.quantization; "
                        "print(modelopt.__version__)"], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"ModelOpt does not import in {VENV}:\n{r.stderr}")
    return r.stdout.strip()


def run_measured(cmd, log_path):
    """Runs cmd; returns (exit code, wall seconds, peak RSS in MiB of that process)."""
    with open(log_path, "w") as f:
        f.write(" ".join(map(str, cmd)) + "\n\n")
        f.flush()
        t0 = time.monotonic()
        p = subprocess.Popen(list(map(str, cmd)), stdout=f, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.monotonic() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
    return p.returncode, wall, usage.ru_maxrss / 1024.0


def count_qdq(path):
    r = subprocess.run([VENV_PY, "-c", COUNT_QDQ, path], capture_output=True, text=True)
    if r.returncode != 0:
        return None
    return json.loads(r.stdout)


OUTPUT_MSE = r"""
import json, sys, numpy as np, onnxruntime as ort
x = np.load(sys.argv[1])
so = ort.SessionOptions()
so.intra_op_num_threads = 2
# The models' own semantics; ORT 1.24's full optimizer also rejects FP8 Q/DQ ahead of Transpose.
so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
def run(p):
    s = ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
    n = s.get_inputs()[0].name
    return [np.concatenate([s.run(None, {n: x[i:i + 1]})[k] for i in range(len(x))])
            for k in range(len(s.get_outputs()))]
ref = run(sys.argv[2])
out = {}
for p in sys.argv[3:]:
    y = run(p)
    out[p] = float(np.mean(np.concatenate([((a - b) ** 2).ravel() for a, b in zip(y, ref)])))
print(json.dumps(out))
"""


def output_mse(npy, fp32_model, models):
    """Mean squared difference of every model output vs the float model's (ORT CPU)."""
    r = subprocess.run([VENV_PY, "-c", OUTPUT_MSE, npy, fp32_model, *models],
                       capture_output=True, text=True)
    if r.returncode != 0:
        log(f"output MSE failed: {r.stderr.strip()[-300:]}")
        return {}
    return json.loads(r.stdout)


def evaluate(lowbit, model, out_json, extra, log_path):
    cmd = [lowbit, "eval", model, "--out", out_json, "--quiet", *extra]
    rc, wall, _ = run_measured(cmd, log_path)
    if rc != 0:
        return None
    with open(out_json) as f:
        return json.load(f)["metrics"]["mAP_50_95"]


def model_imgsz(model):
    code = ("import onnx,sys; m=onnx.load(sys.argv[1], load_external_data=False); "
            "d=m.graph.input[0].type.tensor_type.shape.dim; print(d[-1].dim_value or 640)")
    r = subprocess.run([VENV_PY, "-c", code, model], capture_output=True, text=True)
    return int(r.stdout.strip()) if r.returncode == 0 else 640


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="float ONNX model (default: the bundled assets/*-raw.onnx)")
    ap.add_argument("--calib", help="calibration .npy (default: built from --calib-list)")
    ap.add_argument("--calib-list", help="image list for `lowbit calib` (default: assets/calib/*.txt)")
    ap.add_argument("--lowbit", default=os.path.join(ROOT, "build", "lowbit"))
    ap.add_argument("--modes", nargs="+", default=["int8", "fp8"], choices=["int8", "fp8"])
    ap.add_argument("--method", default="entropy", choices=["entropy", "max"],
                    help="calibration method for both tools (ModelOpt offers only these two)")
    ap.add_argument("--lowbit-method", default=None,
                    help="lowbit's method when it should differ from --method (entropy, max, "
                         "percentile, mse, or `default` for lowbit's own default)")
    ap.add_argument("--high-precision", default="fp32", choices=["fp32", "fp16"],
                    help="non-quantized precision for both (fp32 so that `lowbit eval` runs both)")
    ap.add_argument("--workdir", default=os.path.join(ROOT, "runs", "modelopt-compare"))
    ap.add_argument("--repeat", type=int, default=1,
                    help="quantize N times and report the median wall time / max RSS")
    ap.add_argument("--no-eval", action="store_true", help="skip the mAP evaluation")
    ap.add_argument("--mse-images", type=int, default=50,
                    help="val images for the output-MSE column (0 = skip): mean squared "
                         "difference of the raw outputs vs FP32 in ONNX Runtime, a much less "
                         "noisy accuracy signal than mAP on a small val set")
    ap.add_argument("--eval-args", default="", help="extra arguments for `lowbit eval`")
    ap.add_argument("--no-install", action="store_true", help="do not create .venv-modelopt")
    ap.add_argument("--lowbit-args", default="", help="extra arguments for `lowbit quantize`")
    args = ap.parse_args()

    if not args.model:
        found = sorted(glob.glob(os.path.join(ROOT, "assets", "*-raw.onnx")))
        if not found:
            sys.exit("no --model given and no bundled assets/*-raw.onnx found")
        args.model = found[0]
    if not os.path.exists(args.lowbit):
        sys.exit(f"lowbit binary {args.lowbit} not found (build it with tools/build.sh)")
    if not os.path.exists(args.model):
        sys.exit(f"model {args.model} not found (the bundled model is produced by "
                 "tools/train_fixture.py; or pass --model)")
    os.makedirs(args.workdir, exist_ok=True)
    mo_version = ensure_modelopt(args.no_install)
    lb_version = subprocess.run([args.lowbit, "--version"], capture_output=True,
                                text=True).stdout.strip()
    log(f"ModelOpt {mo_version}; {lb_version}")

    calib = args.calib
    if not calib:
        lst = args.calib_list
        if not lst:
            found = sorted(glob.glob(os.path.join(ROOT, "assets", "calib", "*.txt")))
            if not found:
                sys.exit("no --calib/--calib-list given and no assets/calib/*.txt found")
            lst = found[0]
        calib = os.path.join(args.workdir, "calib.npy")
        rc, wall, _ = run_measured([args.lowbit, "calib", "--list", lst, "--out", calib,
                                    "--imgsz", str(model_imgsz(args.model))],
                                   os.path.join(args.workdir, "calib.log"))
        if rc != 0:
            sys.exit(f"lowbit calib failed, see {args.workdir}/calib.log")
        log(f"calibration tensor {calib} from {lst} ({wall:.1f} s)")

    eval_extra = args.eval_args.split()
    lb_method = args.lowbit_method or args.method
    lb_method_args = [] if lb_method == "default" else ["--calibration-method", lb_method]
    results = {"modelopt_version": mo_version, "lowbit_version": lb_version,
               "model": args.model, "calib": calib, "method": args.method,
               "lowbit_method": lb_method, "high_precision": args.high_precision, "rows": []}
    fp32_map = None
    if not args.no_eval:
        fp32_map = evaluate(args.lowbit, args.model, os.path.join(args.workdir, "fp32.json"),
                            eval_extra, os.path.join(args.workdir, "eval-fp32.log"))
        results["fp32_map50_95"] = fp32_map
        log(f"FP32 mAP50-95 {fp32_map}")

    for mode in args.modes:
        for tool in ("modelopt", "lowbit"):
            out = os.path.join(args.workdir, f"{tool}-{mode}.onnx")
            if tool == "modelopt":
                cmd = [VENV_PY, "-m", "modelopt.onnx.quantization", "--onnx_path", args.model,
                       "--quantize_mode", mode, "--calibration_data_path", calib,
                       "--calibration_method", args.method, "--calibration_eps", "cpu",
                       "--high_precision_dtype", args.high_precision, "--output_path", out]
            else:
                cmd = [args.lowbit, "quantize", args.model, "--mode", mode, "--calib", calib,
                       *lb_method_args, "--high-precision",
                       args.high_precision, "--out", out, *args.lowbit_args.split()]
            walls, rss = [], 0.0
            for r in range(max(1, args.repeat)):
                lp = os.path.join(args.workdir, f"quantize-{tool}-{mode}-{r}.log")
                rc, wall, peak = run_measured(cmd, lp)
                if rc != 0:
                    sys.exit(f"{tool} {mode} failed (exit {rc}), see {lp}")
                walls.append(wall)
                rss = max(rss, peak)
                log(f"{tool} {mode}: {wall:.1f} s, {peak:.0f} MiB")
            walls.sort()
            row = {"mode": mode, "tool": tool, "wall_s": walls[len(walls) // 2],
                   "walls_s": walls, "peak_rss_mib": rss, "qdq": count_qdq(out), "output": out}
            if not args.no_eval:
                row["map50_95"] = evaluate(args.lowbit, out,
                                           os.path.join(args.workdir, f"{tool}-{mode}.json"),
                                           eval_extra,
                                           os.path.join(args.workdir, f"eval-{tool}-{mode}.log"))
            results["rows"].append(row)

    if args.mse_images > 0:
        val = sorted(glob.glob(os.path.join(ROOT, "assets", "val", "images", "*")))
        val = val[:args.mse_images]
        if val:
            lst = os.path.join(args.workdir, "mse-images.txt")
            with open(lst, "w") as f:
                f.write("".join(os.path.abspath(v) + "\n" for v in val))
            npy = os.path.join(args.workdir, "mse-images.npy")
            rc, _, _ = run_measured([args.lowbit, "calib", "--list", lst, "--out", npy,
                                     "--imgsz", str(model_imgsz(args.model))],
                                    os.path.join(args.workdir, "mse-images.log"))
            if rc == 0:
                mse = output_mse(npy, args.model, [row["output"] for row in results["rows"]])
                for row in results["rows"]:
                    row["output_mse"] = mse.get(row["output"])
                results["mse_images"] = len(val)

    with open(os.path.join(args.workdir, "compare.json"), "w") as f:
        json.dump(results, f, indent=2)

    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    print(f"ModelOpt {mo_version} vs {lb_version}; model {os.path.basename(args.model)}; "
          f"calibration {os.path.basename(calib)}, method {args.method} (lowbit: {lb_method}); "
          f"high precision "
          f"{args.high_precision}; FP32 mAP50-95 {fmt(fp32_map, '.4f')}\n")
    print("| mode | tool | mAP50-95 | drop vs FP32 | quantize wall (s) | peak RSS (MiB) "
          "| Q/DQ pairs (act + weight) | output MSE vs FP32 |")
    print("|---|---|---|---|---|---|---|---|")
    for row in results["rows"]:
        m = row.get("map50_95")
        drop = None if m is None or fp32_map is None else fp32_map - m
        q = row["qdq"]
        qs = "n/a" if not q else f"{q['total']} ({q['activation']} + {q['weight']})"
        print(f"| {row['mode'].upper()} | {row['tool']} | {fmt(m, '.4f')} | {fmt(drop, '+.4f')} "
              f"| {row['wall_s']:.1f} | {row['peak_rss_mib']:.0f} | {qs} "
              f"| {fmt(row.get('output_mse'), '.5f')} |")
    print()
    for mode in args.modes:
        r = {row["tool"]: row for row in results["rows"] if row["mode"] == mode}
        if "modelopt" in r and "lowbit" in r:
            print(f"{mode.upper()}: lowbit is {r['modelopt']['wall_s'] / r['lowbit']['wall_s']:.1f}x "
                  f"faster and uses {r['modelopt']['peak_rss_mib'] / r['lowbit']['peak_rss_mib']:.1f}x "
                  f"less peak memory than ModelOpt")
    log(f"details in {os.path.join(args.workdir, 'compare.json')}")


if __name__ == "__main__":
    main()
