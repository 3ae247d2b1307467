"""`lowbit run --scheduler slurm --shards 2` against a real one-node Slurm (tools/slurm_local.sh).

The run is killed part way (one of its Slurm jobs cancelled with scancel), fails naming the
steps that did not finish, and resumes when run again: the finished steps are not resubmitted,
the rest are, and the summary equals the local run's apart from timings. Skipped, with the
reason, where Slurm is not installed or cannot be started (it needs root); never faked.
"""
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SOURCE_DIR = Path(os.environ.get("LOWBIT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
ASSETS = SOURCE_DIR / "assets"
MODEL = ASSETS / "shapes-yolov10m-w0p1875-raw.onnx"
SLURM_LOCAL = SOURCE_DIR / "tools" / "slurm_local.sh"

pytestmark = pytest.mark.skipif(not LOWBIT or not Path(LOWBIT).exists() or not MODEL.exists(),
                                reason="LOWBIT_BIN is not set to the lowbit binary, or no model")


def slurm_missing():
    for tool in ("sbatch", "squeue", "scancel", "sinfo"):
        if not shutil.which(tool):
            return f"{tool} not found (apt-get install slurm-wlm munge)"
    if not Path("/usr/sbin/slurmctld").exists() or not Path("/usr/sbin/munged").exists():
        return "slurmctld or munged not installed (apt-get install slurm-wlm munge)"
    return None


@pytest.fixture(scope="module")
def slurm():
    why = slurm_missing()
    if why:
        pytest.skip(f"no Slurm: {why}")
    running = subprocess.run(["bash", SLURM_LOCAL, "status"]).returncode == 0
    if not running:
        if os.geteuid() != 0:
            pytest.skip("no Slurm running and starting one needs root (tools/slurm_local.sh)")
        r = subprocess.run(["bash", SLURM_LOCAL, "start"], capture_output=True, text=True,
                           timeout=120)
        if r.returncode != 0:
            pytest.skip(f"tools/slurm_local.sh start failed: {r.stderr.strip()}")
    yield
    if not running:
        subprocess.run(["bash", SLURM_LOCAL, "stop"], capture_output=True, timeout=120)


@pytest.fixture(scope="module")
def calib_list(tmp_path_factory):
    src = ASSETS / "calib" / "calib100.txt"
    lines = [ln.strip() for ln in src.read_text().splitlines()
             if ln.strip() and not ln.startswith("#")][:6]
    p = tmp_path_factory.mktemp("list") / "calib6.txt"
    p.write_text("".join(str(ASSETS / "calib" / ln) + "\n" for ln in lines))
    return p


def run_args(root, calib_list):
    return ["run", "--root", root, "--max-images", 8, "--ks", 0, 2, "--modes", "fp8",
            "--sensitivity-images", 2, "--threads", 1, "--calib-list", calib_list]


def lowbit(*args, check=True, timeout=900):
    r = subprocess.run([LOWBIT, *map(str, args)], capture_output=True, text=True,
                       timeout=timeout)
    if check and r.returncode != 0:
        raise AssertionError(f"lowbit {' '.join(map(str, args))} failed ({r.returncode}):\n"
                             f"{r.stderr}\n{r.stdout}")
    return r


def tables_without_timing(path, root):
    """summary.md's tables without their timing columns, the run root replaced."""
    text = Path(path).read_text().replace(str(root), "<root>")
    tables, cur = [], []
    for ln in text.splitlines() + [""]:
        if ln.startswith("|"):
            cur.append([c.strip() for c in ln.strip().strip("|").split("|")])
        elif cur:
            tables.append(cur)
            cur = []
    assert tables, text
    out = []
    for rows in tables:
        # A column is timing when its header says so or any cell states milliseconds (the
        # "against the baseline" verdicts of ## Latency quote measured differences).
        keep = [i for i, h in enumerate(rows[0])
                if not any(w in h.lower() for w in ("ms", "latency", "fps", "speed"))
                and not any(re.search(r"\d ms\b", r[i]) for r in rows[2:] if i < len(r))]
        out.append([[r[i] for i in keep if i < len(r)] for r in rows])
    return out


def jobs():
    r = subprocess.run(["squeue", "-h", "-o", "%A %j %T"], capture_output=True, text=True)
    return [ln.split() for ln in r.stdout.splitlines() if ln.strip()]


def test_print_writes_scripts(tmp_path, calib_list):
    """--scheduler print needs no Slurm: scripts and submit.sh, nothing submitted or run."""
    root = tmp_path / "print"
    lowbit(*run_args(root, calib_list), "--scheduler", "print", "--shards", 2, "--partition",
           "cpu", "--time", "00:30:00", "--sbatch-arg=--qos=low")
    d = root / "slurm"
    submit = (d / "submit.sh").read_text()
    shards = (d / "baseline.shards.sbatch").read_text()
    assert "#SBATCH --array=0-1" in shards and "--step-shard" in shards
    assert "#SBATCH --partition=cpu" in shards and "#SBATCH --qos=low" in shards
    assert "--step-merge" in (d / "baseline.sbatch").read_text()
    assert "--step-shard" not in (d / "calib.sbatch").read_text()
    # afterok mirrors the graph: int8 waits for calib, the baseline merge for its shards.
    assert "afterok:$j_calib" in submit and "afterok:$j_baseline_shards" in submit
    assert not (root / "baseline-coco").exists() and not (root / ".lowbit-run").exists()


def test_slurm_run_killed_then_resumed_equals_local(slurm, tmp_path, calib_list):
    local = tmp_path / "local"
    lowbit(*run_args(local, calib_list))

    root = tmp_path / "slurm"
    args = [LOWBIT, *map(str, run_args(root, calib_list)), "--scheduler", "slurm", "--shards", 2,
            "--poll", 0.5]
    log = open(tmp_path / "killed.log", "w")
    p = subprocess.Popen(list(map(str, args)), stdout=log, stderr=subprocess.STDOUT)
    killed = None
    t0 = time.time()
    while p.poll() is None and killed is None:
        assert time.time() - t0 < 600, "the Slurm run did not get going"
        if (root / ".lowbit-run" / "calib.json").exists():
            listed = [j for j in jobs() if j[1].startswith("lowbit-")]
            running = [j for j in listed if j[2] == "RUNNING"]
            if running:
                killed = running[0]
                # A running job can end between squeue and scancel (then nothing is killed and
                # the run succeeds), so the last step's job, still waiting on its dependencies,
                # is cancelled too: the run must then fail and the resume redo it.
                last = [j for j in listed if j[1] == "lowbit-compare" and j[2] == "PENDING"]
                for j in [killed] + last:
                    subprocess.run(["scancel", j[0].split("_")[0]], check=True)
        time.sleep(0.1)
    rc = p.wait(timeout=600)
    log.close()
    text = (tmp_path / "killed.log").read_text()
    assert killed is not None, "no job was running to kill:\n" + text
    assert rc != 0, text
    assert "failed or were cancelled" in text, text
    done_before = {f.stem for f in (root / ".lowbit-run").glob("*.json")}
    assert "calib" in done_before

    r = subprocess.run(list(map(str, args)), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr + r.stdout
    for step in done_before:
        assert f"{step}: up to date, not submitted" in r.stderr, (step, r.stderr)
    assert "submitted" in r.stderr
    assert tables_without_timing(root / "summary.md", root) == tables_without_timing(
        local / "summary.md", local)
    # Every step recorded, so a local run over the same root redoes nothing.
    r = lowbit(*run_args(root, calib_list))
    assert "ran" not in [ln.split()[1] for ln in r.stdout.splitlines()
                         if len(ln.split()) == 3 and ln.split()[0] in done_before]
    times = json.loads((root / "run-times.json").read_text())
    assert all(s["status"] == "skipped" for s in times["steps"]), times
    assert list((root / "shards").glob("*/shard-1-of-2.json"))
