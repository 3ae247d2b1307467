"""tools/check_layers.py, the build's guard on the layers of src/ (src/layers.txt).

The tree as it is passes; a copy of src/ with one include planted against the table (an upward
include, a path escaping through "..", a third-party header outside its module), a table with a
cycle, or a folder the table does not name is rejected with the file and line.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(os.environ.get("LOWBIT_SOURCE_DIR", Path(__file__).resolve().parents[2]))
CHECKER = ROOT / "tools" / "check_layers.py"


def run_checker(src):
    return subprocess.run([sys.executable, str(CHECKER), "--src", str(src)],
                          capture_output=True, text=True)


@pytest.fixture
def src_copy(tmp_path):
    dst = tmp_path / "src"
    shutil.copytree(ROOT / "src", dst)
    return dst


def plant(path, line):
    with open(path, "a", encoding="utf-8") as f:
        f.write(line + "\n")


def test_tree_follows_the_layers():
    r = run_checker(ROOT / "src")
    assert r.returncode == 0, r.stderr


def test_the_copy_passes_before_planting(src_copy):
    assert run_checker(src_copy).returncode == 0


@pytest.mark.parametrize("file,include,words", [
    ("calib/calibrators.h", '#include "quant/numerics.h"', "calib may not include"),
    ("core/fs.h", '#include "cli/common.h"', "core may not include"),
    ("ir/graph.cpp", '#include "../runtime/executor.h"', "ir may not include"),
    ("eval/decode.cpp", "#include <opencv2/core.hpp>", "belongs to data"),
    ("quant/placement.cpp", "#include <onnx/onnx_pb.h>", "belongs to onnx"),
])
def test_planted_include_is_rejected(src_copy, file, include, words):
    plant(src_copy / file, include)
    r = run_checker(src_copy)
    assert r.returncode == 1
    assert f"{src_copy / file}:" in r.stderr and words in r.stderr, r.stderr


def test_downward_and_local_includes_pass(src_copy):
    plant(src_copy / "quant" / "placement.cpp", '#include "core/status.h"')  # two layers down
    plant(src_copy / "quant" / "placement.cpp", '#include "placement.h"')  # next to the file
    assert run_checker(src_copy).returncode == 0


def test_cycle_in_the_table_is_rejected(src_copy):
    table = src_copy / "layers.txt"
    table.write_text(table.read_text().replace("core:\n", "core: cli\n"))
    r = run_checker(src_copy)
    assert r.returncode != 0 and "cycle" in r.stderr, r.stderr


def test_folder_outside_the_table_is_rejected(src_copy):
    (src_copy / "extra").mkdir()
    (src_copy / "extra" / "x.cpp").write_text("int x;\n")
    r = run_checker(src_copy)
    assert r.returncode == 1 and "no module" in r.stderr, r.stderr
