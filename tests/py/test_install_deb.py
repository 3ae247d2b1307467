"""The Debian packages CPack makes (`cpack -G DEB` in the build folder): `lowbit` (program and
bundled assets) and `lowbit-dev` (static libraries, headers, CMake package, pkg-config file).

Each package's dependencies must be Debian 12 packages (the ones this machine has installed,
which tools/setup.sh installs from Debian 12), lowbit-dev must depend on lowbit of the same
version, and the files must sit under /usr. The packages are unpacked (dpkg -x) into a temporary
root and the program is run from there, outside the repository: it finds the assets in
<root>/usr/share/lowbit/assets and runs `lowbit eval --max-images 20` and `lowbit info`.
(`dpkg -i` on a clean Debian 12 machine is not done here: it would change the machine's packages.)
"""
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")
BUILD_DIR = Path(LOWBIT).resolve().parent if LOWBIT else None
MODEL_FILE = "shapes-yolov10m-w0p1875-raw.onnx"

pytestmark = pytest.mark.skipif(
    not LOWBIT or not (BUILD_DIR / "CPackConfig.cmake").exists(),
    reason="LOWBIT_BIN is not set to the lowbit binary of a CMake build folder")


def run(args, cwd=None, env=None, check=True):
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env,
                       timeout=1800)
    if check:
        assert r.returncode == 0, f"{' '.join(map(str, args))} ({r.returncode}):\n{r.stderr}\n{r.stdout}"
    return r


@pytest.fixture(scope="module")
def debs(tmp_path_factory):
    out = tmp_path_factory.mktemp("debs")
    run(["cpack", "-G", "DEB", "--config", BUILD_DIR / "CPackConfig.cmake", "-B", out])
    found = {}
    for deb in out.glob("*.deb"):
        found[run(["dpkg-deb", "-f", deb, "Package"]).stdout.strip()] = deb
    assert set(found) == {"lowbit", "lowbit-dev"}, found
    return found


def depends(deb):
    """Package names of Depends, alternatives flattened."""
    field = run(["dpkg-deb", "-f", deb, "Depends"]).stdout.strip()
    names = []
    for part in field.split(","):
        for alt in part.split("|"):
            names.append(re.match(r"\s*([a-z0-9.+-]+)", alt).group(1))
    return field, names


def installed(name):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", name], capture_output=True,
                       text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def test_dependencies(debs):
    field, names = depends(debs["lowbit"])
    assert any(n.startswith("libdnnl") for n in names), field
    assert any(n.startswith("libopencv-core") for n in names), field
    for n in names:
        assert installed(n), f"lowbit depends on {n}, which is not a package here: {field}"
    version = run(["dpkg-deb", "-f", debs["lowbit"], "Version"]).stdout.strip()
    field, names = depends(debs["lowbit-dev"])
    assert f"lowbit (= {version})" in field, field
    for n in names:
        assert n == "lowbit" or installed(n), f"lowbit-dev depends on {n}: {field}"


def test_contents(debs):
    runtime = run(["dpkg-deb", "-c", debs["lowbit"]]).stdout
    assert "./usr/bin/lowbit\n" in runtime
    assert f"./usr/share/lowbit/assets/{MODEL_FILE}" in runtime
    assert "./usr/include" not in runtime
    dev = run(["dpkg-deb", "-c", debs["lowbit-dev"]]).stdout
    for f in ("/lowbitConfig.cmake", "/pkgconfig/lowbit.pc", "/liblowbit_core.a",
              "./usr/include/lowbit/runtime/executor.h"):
        assert f in dev, f
    assert "./usr/bin/lowbit" not in dev


def test_unpacked_program_runs(debs, tmp_path):
    root = tmp_path / "root"
    for deb in debs.values():
        run(["dpkg", "-x", deb, root])
    lowbit = root / "usr" / "bin" / "lowbit"
    env = dict(os.environ)
    env.pop("LOWBIT_ASSETS", None)
    work = tmp_path / "work"
    work.mkdir()
    info = json.loads(run([lowbit, "info", "--json"], cwd=work, env=env).stdout)
    assert info["path"] == str(root / "usr" / "share" / "lowbit" / "assets" / MODEL_FILE)
    run([lowbit, "eval", "--max-images", "20", "--threads", "2", "--out", work / "m.json"],
        cwd=work, env=env)
    metrics = json.loads((work / "m.json").read_text())["metrics"]
    assert metrics["num_images"] == 20 and metrics["mAP_50_95"] > 0.3, metrics
    assert re.search(r"^oneDNN +\d", run([lowbit, "--version"], cwd=work).stdout, re.M)
