#!/usr/bin/env python3
"""lowbit's engine against ONNX Runtime on the same model, same input, same thread count.

For each model and thread count, the two engines run in alternating rounds (the order flips
every round) so that load from other processes on a shared machine hits both alike:
  - lowbit: `lowbit smoke MODEL --input x.npy --runs R --warmup W --threads T`, median of its R
    timed runs from the JSON it prints (model load and planning are not timed);
  - ORT:    one InferenceSession (CPU EP, ORT_ENABLE_ALL, intra_op_num_threads=T, inter_op 1,
            sequential), W warm-up runs per round, then the median of R timed `run` calls.
The result is the median over rounds of each engine's per-round median, and the ratio
lowbit / ORT (< 1: lowbit is faster). The input is a seeded image-like tensor in [0, 1).

The machine may be shared: every round measures the CPU time other processes (and the
hypervisor, as steal time) used while it ran, from /proc/stat minus this process tree's own
CPU time, and is repeated (up to --max-retries times) while that exceeds --max-foreign cores.
The table reports the foreign load of the rounds kept; on a busy 2-core machine a 2-thread
result says more about the scheduler than about the engines.

  .venv/bin/python bench/engine_bench.py --lowbit build/lowbit \\
      tests/models/full/yolov10m-raw.onnx tests/models/full/yolov10m.onnx
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort


def busy_seconds():
    """CPU time all processes (and steal) used so far, from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / os.sysconf("SC_CLK_TCK")


def own_seconds():
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def guarded(fn, max_foreign, max_retries):
    """Runs fn() until other processes used at most max_foreign cores meanwhile; returns
    (result, foreign cores, retries)."""
    for attempt in range(max_retries + 1):
        b0, o0, w0 = busy_seconds(), own_seconds(), time.perf_counter()
        result = fn()
        wall = time.perf_counter() - w0
        foreign = max(0.0, (busy_seconds() - b0) - (own_seconds() - o0)) / wall
        if foreign <= max_foreign or attempt == max_retries:
            return result, foreign, attempt
        time.sleep(1.0)


def lowbit_round(lowbit, model, x_path, threads, runs, warmup):
    args = [lowbit, "smoke", str(model), "--input", str(x_path), "--runs", str(runs),
            "--warmup", str(warmup), "--threads", str(threads)]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{r.stderr}")
    return json.loads(r.stdout)["latency"]["median_ms"]


def ort_session(model, threads):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])


def ort_round(sess, feed, runs, warmup):
    for _ in range(warmup):
        sess.run(None, feed)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="+", type=Path)
    ap.add_argument("--lowbit", default=os.environ.get("LOWBIT_BIN", "build/lowbit"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per engine")
    ap.add_argument("--runs", type=int, default=5, help="timed runs per round")
    ap.add_argument("--warmup", type=int, default=2, help="untimed runs per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-foreign", type=float, default=0.1,
                    help="repeat a round when other processes used more cores than this")
    ap.add_argument("--max-retries", type=int, default=5)
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args()

    print(f"onnxruntime {ort.__version__}; {a.rounds} rounds x {a.runs} runs "
          f"(+{a.warmup} warm-up); load average before: {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in a.models:
            sess0 = ort_session(model, 1)
            inp = sess0.get_inputs()[0]
            x = np.random.default_rng(a.seed).random(inp.shape, dtype=np.float32)
            x_path = Path(tmp) / "x.npy"
            np.save(x_path, x)
            del sess0
            for threads in a.threads:
                sess = ort_session(model, threads)
                feed = {inp.name: x}
                ours, theirs, noise = [], [], []
                retries = 0

                def run_ours():
                    return lowbit_round(a.lowbit, model, x_path, threads, a.runs, a.warmup)

                def run_ort():
                    return ort_round(sess, feed, a.runs, a.warmup)

                for r in range(a.rounds):
                    order = [(ours, run_ours), (theirs, run_ort)]
                    if r % 2 == 1:
                        order.reverse()
                    for out, fn in order:
                        ms, foreign, n = guarded(fn, a.max_foreign, a.max_retries)
                        out.append(ms)
                        noise.append(foreign)
                        retries += n
                    print(f"  {model.name} T={threads} round {r + 1}: lowbit {ours[-1]:.1f} ms, "
                          f"ORT {theirs[-1]:.1f} ms (foreign load {noise[-2]:.2f}, "
                          f"{noise[-1]:.2f} cores)", flush=True)
                del sess
                m_ours, m_ort = statistics.median(ours), statistics.median(theirs)
                results.append({"model": model.name, "threads": threads, "lowbit_ms": m_ours,
                                "ort_ms": m_ort, "ratio": m_ours / m_ort,
                                "lowbit_rounds": ours, "ort_rounds": theirs,
                                "max_foreign_cores": max(noise), "retries": retries})
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    print("| model | threads | lowbit median ms | ORT median ms | lowbit / ORT | "
          "max foreign load (cores) | retried rounds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print(f"| {r['model']} | {r['threads']} | {r['lowbit_ms']:.1f} | {r['ort_ms']:.1f} | "
              f"{r['ratio']:.3f} | {r['max_foreign_cores']:.2f} | {r['retries']} |")
    if a.json:
        a.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
