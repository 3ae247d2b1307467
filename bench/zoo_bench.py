#!/usr/bin/env python3
"""The model zoo (tools/zoo_export.py) on lowbit's engine against ONNX Runtime: agreement and latency.

For every model of the manifest (or the ones named with --only):
  - agreement: one seeded image-like input in [0, 1); `lowbit smoke --save-outputs` and an ORT
    session (CPU EP, ORT_ENABLE_ALL) on it; per output the error relative to the output's scale,
    max|lowbit - ORT| / max|ORT|, and the worst over outputs (target: <= 1e-4). TopK heads
    (YOLOv10 end-to-end [1,300,6], RT-DETR [1,300,4+nc]): random weights tie many scores, and
    tied rows may come out in either order, so the model runs with every TopK's input as an
    extra output, so do the logits (Sigmoid inputs) before it, and the final rows are compared
    by sorted score and, for rows with a unique score, row by row (see agreement());
  - latency: bench/engine_bench.py's method, lowbit and ORT in alternating rounds (the order
    flips every round) at each thread count, median over rounds of each round's median, and the
    ratio lowbit / ORT; LOWBIT_PROFILE=1 once per model (--profile) for the top ops.
The machine may be shared: the rounds are interleaved so that load hits both engines alike; report
the numbers "under load" unless the machine was idle.

  .venv/bin/python bench/zoo_bench.py --zoo tests/models/zoo --lowbit build/lowbit \\
      --threads 1 2 --json zoo.json
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_bench import guarded, ort_round, ort_session  # noqa: E402


def make_input(model_entry, seed):
    shape = [d if isinstance(d, int) and d > 0 else 1 for d in model_entry["input_shape"]]
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def lowbit_outputs(lowbit, model, x_path, work, threads):
    out = Path(tempfile.mkdtemp(dir=work, prefix="out-"))  # fresh: no other model's outputs
    args = [lowbit, "smoke", str(model), "--input", str(x_path), "--out", str(out),
            "--save-outputs", "--runs", "1", "--warmup", "0", "--threads", str(threads)]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else f"rc {r.returncode}"
    outs = []
    while (out / "outputs" / f"{len(outs)}.npy").exists():
        outs.append(np.load(out / "outputs" / f"{len(outs)}.npy"))
    return outs, None


def rel_err(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    d = float(np.max(np.abs(a - b))) if b.size else 0.0
    return d / scale if scale > 0 else d


def with_topk_inputs(model_path, out_path):
    """A copy of the model whose outputs also include the data input of every TopK not downstream
    of another TopK: the dense tensor
    (e.g. YOLOv10's one-to-one scores, RT-DETR's encoder scores) before the selection, which
    compares element by element where the selected rows may tie. Returns the added names."""
    import onnx
    from onnx import helper
    m = onnx.load(str(model_path))
    have = {o.name for o in m.graph.output}
    names = []
    after_topk = set()  # tensors that depend on a TopK's choice (ties make them differ)
    logits = []
    for n in m.graph.node:  # topological order
        if n.op_type == "TopK" and n.input[0] not in after_topk and n.input[0] not in have \
                and n.input[0] not in names:
            names.append(n.input[0])
        if n.op_type == "Sigmoid" and n.input[0] not in after_topk and n.input[0] not in have:
            logits.append(n.input[0])
        if n.op_type == "TopK" or any(i in after_topk for i in n.input):
            after_topk.update(n.output)
    names += [t for t in logits if t not in names]
    for name in names:
        m.graph.output.append(helper.make_value_info(name, onnx.TypeProto()))
        m.graph.output[-1].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    onnx.save(m, str(out_path))
    return names[:len(names) - len(logits)], logits


def topk_rows_err(got, want, score_of):
    """Rows selected by TopK (YOLOv10 [1,K,6], RT-DETR [1,K,4+nc]): the sorted scores must agree,
    and each row whose score is unique (ties may come out in either order) must have the same
    values. Returns (error relative to each part's scale, rows matched one to one)."""
    g = np.asarray(got, np.float64).reshape(-1, got.shape[-1])
    w = np.asarray(want, np.float64).reshape(-1, want.shape[-1])
    if g.shape != w.shape:
        return float("inf"), 0
    gs, ws = score_of(g), score_of(w)
    err = rel_err(np.sort(gs), np.sort(ws))
    scale = max(float(np.abs(w).max()), 1e-12)
    matched = 0
    for i, s in enumerate(ws):
        if np.sum(np.abs(ws - s) <= 2e-3 * abs(s)) > 1:
            continue
        j = int(np.argmin(np.abs(gs - s)))
        err = max(err, float(np.abs(g[j] - w[i]).max()) / scale)
        matched += 1
    return err, matched


def agreement(ours, theirs, head, n_model_outputs, n_topk_inputs=0):
    """Errors relative to each tensor's scale. The verdict (max_rel_err) covers the model's own
    outputs elementwise, or for TopK heads the Sigmoid inputs (logits) before the TopK and the
    boxes and classes of the final rows whose score is unique. Sigmoid outputs of YOLOv10's
    random-weight head lie around 1e-5..1e-4, where ONNX Runtime's Sigmoid (MLAS's
    approximation) is off by up to ~1% of the value (lowbit's is within ~1e-6 of float64; see
    README "Model zoo"), so the score-domain errors (TopK input, final scores) are reported
    beside the verdict, not in it."""
    res = {"outputs": n_model_outputs}
    if len(ours) != len(theirs):
        res["max_rel_err"] = float("inf")
        return res
    errs, score_errs = [], []
    for k, (a, b) in enumerate(zip(ours, theirs)):
        if k < n_model_outputs and head in ("end2end", "rtdetr"):
            n_box = 4
            score_of = (lambda r: r[:, 4]) if head == "end2end" else (lambda r: r[:, 4:].max(1))
            e, res["rows_matched"] = topk_rows_err(a, b, score_of)
            score_errs.append(e)
            # boxes (and classes) of the untied rows, on the box scale
            g = np.asarray(a, np.float64).reshape(-1, a.shape[-1])
            w = np.asarray(b, np.float64).reshape(-1, b.shape[-1])
            gs, ws = score_of(g), score_of(w)
            scale = max(float(np.abs(w[:, :n_box]).max()), 1e-12)
            be = 0.0
            for i, s_ in enumerate(ws):
                if np.sum(np.abs(ws - s_) <= 2e-3 * abs(s_)) > 1:
                    continue
                j = int(np.argmin(np.abs(gs - s_)))
                be = max(be, float(np.abs(g[j, :n_box] - w[i, :n_box]).max()) / scale)
                if head == "end2end" and g[j, 5] != w[i, 5]:
                    be = float("inf")
            errs.append(be)
        elif n_model_outputs <= k < n_model_outputs + n_topk_inputs:
            score_errs.append(rel_err(a, b))
        else:
            errs.append(rel_err(a, b))
    res["max_rel_err"] = max(errs) if errs else float("inf")
    if score_errs:
        res["score_rel_err"] = max(score_errs)
    return res


def lowbit_time(lowbit, model, x_path, threads, runs, warmup):
    args = [lowbit, "smoke", str(model), "--input", str(x_path), "--runs", str(runs),
            "--warmup", str(warmup), "--threads", str(threads)]
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{r.stderr}")
    return json.loads(r.stdout)["latency"]["median_ms"]


def profile(lowbit, model, x_path, threads, top):
    """The top ops of LOWBIT_PROFILE=1 (stderr table), as (share %, label) pairs."""
    env = dict(os.environ, LOWBIT_PROFILE="1")
    args = [lowbit, "smoke", str(model), "--input", str(x_path), "--runs", "3", "--warmup", "1",
            "--threads", str(threads)]
    r = subprocess.run(args, capture_output=True, text=True, env=env)
    rows = []  # "  ms/run  cpu ms  %  calls  op" lines
    for line in r.stderr.splitlines():
        m = re.match(r"\s*([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(.*\S)\s*$", line)
        if m:
            rows.append((float(m.group(3)), f"{m.group(5)} ({m.group(4)} calls)"))
    return rows[:top], r.stderr


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zoo", type=Path, default=Path("tests/models/zoo"))
    ap.add_argument("--only", nargs="+", help="model names of the manifest")
    ap.add_argument("--lowbit", default=os.environ.get("LOWBIT_BIN", "build/lowbit"))
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds per engine")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per round")
    ap.add_argument("--warmup", type=int, default=1, help="untimed runs per round")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-foreign", type=float, default=10.0,
                    help="repeat a round when other processes used more cores than this "
                         "(default: never; the rounds are interleaved instead)")
    ap.add_argument("--max-retries", type=int, default=0)
    ap.add_argument("--no-timing", action="store_true", help="agreement only")
    ap.add_argument("--profile", action="store_true", help="LOWBIT_PROFILE=1 top ops per model")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = ap.parse_args()

    manifest = json.loads((a.zoo / "manifest.json").read_text())
    entries = manifest["models"]
    if a.only:
        entries = [e for e in entries if e["name"] in a.only]
        missing = set(a.only) - {e["name"] for e in entries}
        if missing:
            sys.exit(f"not in {a.zoo}/manifest.json: {sorted(missing)}")
    print(f"onnxruntime {ort.__version__}; {a.rounds} rounds x {a.runs} runs (+{a.warmup} "
          f"warm-up); load average before: {os.getloadavg()[0]:.2f}", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for e in entries:
            model = a.zoo / e["file"]
            x = make_input(e, a.seed)
            x_path = Path(tmp) / "x.npy"
            np.save(x_path, x)
            res = {"model": e["name"], "kind": e["kind"], "head": e.get("head"),
                   "input_shape": list(x.shape)}
            check_model = model
            n_out = len(e["outputs"]) if "outputs" in e else 1
            n_topk = 0
            if e.get("head") in ("end2end", "rtdetr"):
                check_model = Path(tmp) / "with_topk_inputs.onnx"
                n_topk = len(with_topk_inputs(model, check_model)[0])
            sess = ort_session(check_model, 2)
            feed = {sess.get_inputs()[0].name: x}
            theirs = sess.run(None, feed)
            del sess
            ours, err = lowbit_outputs(a.lowbit, check_model, x_path, tmp, 2)
            if ours is None:
                res["error"] = err
                print(f"{e['name']}: lowbit failed: {err}", flush=True)
                results.append(res)
                continue
            res.update(agreement(ours, theirs, e.get("head"), n_out, n_topk))
            print(f"{e['name']}: max rel err {res['max_rel_err']:.2e}"
                  + (f" (scores {res['score_rel_err']:.2e}, "
                     f"{res.get('rows_matched', 0)} untied rows matched)"
                     if "score_rel_err" in res else ""), flush=True)
            feed = {next(iter(feed)): x}
            if a.profile:
                rows, _ = profile(a.lowbit, model, x_path, max(a.threads), 8)
                res["profile"] = rows
                for share, label in rows:
                    print(f"    {share:5.1f} %  {label}")
            if a.no_timing:
                results.append(res)
                continue
            res["latency"] = []
            for threads in a.threads:
                sess = ort_session(model, threads)
                ours_ms, ort_ms = [], []
                for r in range(a.rounds):
                    order = [(ours_ms, lambda: lowbit_time(a.lowbit, model, x_path, threads,
                                                            a.runs, a.warmup)),
                             (ort_ms, lambda: ort_round(sess, feed, a.runs, a.warmup))]
                    if r % 2 == 1:
                        order.reverse()
                    for out, fn in order:
                        ms, _, _ = guarded(fn, a.max_foreign, a.max_retries)
                        out.append(ms)
                del sess
                lo, th = statistics.median(ours_ms), statistics.median(ort_ms)
                res["latency"].append({"threads": threads, "lowbit_ms": lo, "ort_ms": th,
                                       "ratio": lo / th, "lowbit_rounds": ours_ms,
                                       "ort_rounds": ort_ms})
                print(f"  T={threads}: lowbit {lo:.1f} ms, ORT {th:.1f} ms, ratio {lo / th:.2f}",
                      flush=True)
            results.append(res)
    print(f"load average after: {os.getloadavg()[0]:.2f}\n")
    cols = "".join(f" lowbit ms T={t} | ORT ms T={t} | ratio T={t} |" for t in a.threads)
    print(f"| model | kind | input | max rel err vs ORT |{cols}")
    print("|---|---|---|---:|" + "---:|---:|---:|" * len(a.threads))
    for r in results:
        kind = r["kind"] + (f" ({r['head']})" if r.get("head") else "")
        shape = "x".join(str(d) for d in r["input_shape"])
        if "error" in r:
            print(f"| {r['model']} | {kind} | {shape} | fails: {r['error']} |")
            continue
        err = f"{r['max_rel_err']:.1e}"
        if "score_rel_err" in r:
            err += f" (scores {r['score_rel_err']:.1e})"
        lat = "".join(f" {l['lowbit_ms']:.1f} | {l['ort_ms']:.1f} | {l['ratio']:.2f} |"
                      for l in r.get("latency", []))
        print(f"| {r['model']} | {kind} | {shape} | {err} |{lat}")
    if a.json:
        tmpf = a.json.with_suffix(a.json.suffix + ".tmp")
        tmpf.write_text(json.dumps({"onnxruntime": ort.__version__, "results": results},
                                   indent=1) + "\n")
        tmpf.replace(a.json)
    bad = [r["model"] for r in results if "error" in r or r["max_rel_err"] > 1e-4]
    if bad:
        print(f"\noutside 1e-4 of ORT or failing: {bad}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
