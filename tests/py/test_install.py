"""`cmake --install` into a temporary prefix, then lowbit used from there as a user would.

- The installed program finds its bundled assets (share/lowbit/assets) from any folder, and
  `lowbit run --max-images 20` works from a folder outside the repository.
- `lowbit --version` names the version, the git revision, oneDNN, the CPU features and the L2 cache.
- examples/load_run_eval.cpp builds against the installed library twice, through
  find_package(lowbit) and through pkg-config, and loads, runs and evaluates the bundled model.
- A binary copied out of the build tree and run inside the repository finds the repository's
  assets; with no assets anywhere, the error names every place it looked.

The build folder is the one LOWBIT_BIN is in (it needs a CMakeCache.txt).
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
SOURCE_DIR = Path(os.environ.get("LOWBIT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
BUILD_DIR = Path(LOWBIT).resolve().parent if LOWBIT else None
MODEL_FILE = "shapes-yolov10m-w0p1875-raw.onnx"

pytestmark = pytest.mark.skipif(
    not LOWBIT or not (BUILD_DIR / "CMakeCache.txt").exists(),
    reason="LOWBIT_BIN is not set to the lowbit binary of a CMake build folder")


def run(args, cwd=None, env=None, check=True, timeout=1800):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd,
                       env=env, timeout=timeout)
    if check:
        assert r.returncode == 0, f"{' '.join(map(str, args))} ({r.returncode}):\n{r.stderr}\n{r.stdout}"
    return r


def clean_env():
    env = dict(os.environ)
    env.pop("LOWBIT_ASSETS", None)
    return env


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    p = tmp_path_factory.mktemp("prefix")
    run(["cmake", "--install", BUILD_DIR, "--prefix", p])
    return p


def test_layout(prefix):
    assert os.access(prefix / "bin" / "lowbit", os.X_OK)
    assets = prefix / "share" / "lowbit" / "assets"
    for f in (MODEL_FILE, "calib/calib100.txt", "val/instances_val.json", "MODEL_CARD.md"):
        assert (assets / f).is_file(), f
    assert (prefix / "include" / "lowbit" / "pipeline" / "jobs.h").is_file()
    assert (prefix / "include" / "lowbit" / "runtime" / "executor.h").is_file()
    assert not (prefix / "include" / "lowbit" / "cli").exists()
    assert list(prefix.glob("lib*/**/cmake/lowbit/lowbitConfig.cmake"))
    assert list(prefix.glob("lib*/**/pkgconfig/lowbit.pc"))
    assert list(prefix.glob("lib*/**/liblowbit_core.a"))


def test_version(prefix):
    out = run([prefix / "bin" / "lowbit", "--version"]).stdout
    assert re.search(r"^lowbit \d+\.\d+\.\d+$", out, re.M), out
    assert re.search(r"^git revision +\S+", out, re.M), out
    assert re.search(r"^oneDNN +\d+\.\d+\.\d+", out, re.M), out
    assert re.search(r"^CPU features +\S", out, re.M), out
    assert re.search(r"^compiled for +\S", out, re.M), out
    assert re.search(r"^L2 cache +(\d+ KiB per core|not reported)", out, re.M), out


def test_installed_program_runs_from_elsewhere(prefix, tmp_path):
    lowbit = prefix / "bin" / "lowbit"
    info = json.loads(run([lowbit, "info", "--json"], cwd=tmp_path, env=clean_env()).stdout)
    assert info["path"] == str(prefix / "share" / "lowbit" / "assets" / MODEL_FILE)
    # The whole workflow, cut down (20 images, one mode, one K), from a folder outside the
    # repository: every bundled input comes from share/lowbit/assets.
    run([lowbit, "run", "--root", tmp_path / "run", "--max-images", "20", "--modes", "int8",
         "--ks", "5", "--sensitivity-images", "2", "--threads", "2"], cwd=tmp_path,
        env=clean_env())
    assert (tmp_path / "run" / "summary.md").is_file()
    assert (tmp_path / "run" / "results" / "int8_k5.json").is_file()


def test_copied_binary_finds_the_repository_assets(tmp_path):
    # A binary outside any tree with assets: run inside the repository, it uses the repository's
    # assets; run elsewhere, the error names every place looked at.
    exe = tmp_path / "bin" / "lowbit"
    exe.parent.mkdir()
    shutil.copy2(LOWBIT, exe)
    info = json.loads(run([exe, "info", "--json"], cwd=SOURCE_DIR / "tests",
                          env=clean_env()).stdout)
    assert Path(info["path"]).resolve() == (SOURCE_DIR / "assets" / MODEL_FILE).resolve()
    r = run([exe, "info"], cwd=tmp_path, env=clean_env(), check=False)
    assert r.returncode != 0, r.stderr
    for place in ("$LOWBIT_ASSETS (not set)", str(tmp_path / "bin"),
                  str(tmp_path / "share" / "lowbit" / "assets"),
                  f"current folder {tmp_path}"):
        assert place in r.stderr, (place, r.stderr)


def example_args(prefix):
    assets = prefix / "share" / "lowbit" / "assets"
    return [assets / MODEL_FILE, assets / "val" / "instances_val.json", assets / "val" / "images",
            "10"]


def check_example(exe, prefix, tmp_path):
    out = run([exe, *example_args(prefix)], cwd=tmp_path, env=clean_env()).stdout
    assert re.search(r"^output \S+ \[1,\d+,\d+\]$", out, re.M), out
    assert "images 10" in out, out
    m = re.search(r"^mAP50-95 ([0-9.]+)$", out, re.M)
    assert m and 0.3 < float(m.group(1)) <= 1.0, out  # the bundled model is a good detector


def test_example_with_find_package(prefix, tmp_path):
    build = tmp_path / "build"
    run(["cmake", "-S", SOURCE_DIR / "examples", "-B", build, "-DCMAKE_BUILD_TYPE=Release",
         f"-DCMAKE_PREFIX_PATH={prefix}"])
    run(["cmake", "--build", build, "-j2"])
    check_example(build / "load_run_eval", prefix, tmp_path)


def test_example_with_pkg_config(prefix, tmp_path):
    pc_dir = next(prefix.glob("lib*/**/pkgconfig/lowbit.pc")).parent
    env = dict(clean_env(), PKG_CONFIG_PATH=str(pc_dir))
    flags = run(["pkg-config", "--cflags", "--libs", "lowbit"], env=env).stdout.split()
    includes = [Path(f[2:]).resolve() for f in flags if f.startswith("-I")]
    assert (prefix / "include" / "lowbit").resolve() in includes, flags
    exe = tmp_path / "load_run_eval"
    cxx = os.environ.get("CXX", "c++")
    run([cxx, "-std=c++20", "-O1", SOURCE_DIR / "examples" / "load_run_eval.cpp", *flags,
         "-o", exe])
    check_example(exe, prefix, tmp_path)
