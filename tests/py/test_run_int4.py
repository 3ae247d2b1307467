"""`lowbit run --modes w4a8` (issue 15 item 6): the INT4 modes are run variants -- ranked by
their own INT4 sweep, candidates quantized with INT4 weights, results and summary rows."""
import json
import os
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("LOWBIT_BIN", os.path.join(ROOT, "build", "lowbit"))
ASSETS = os.path.join(ROOT, "assets")


def test_run_with_w4a8_mode(tmp_path):
    src = os.path.join(ASSETS, "calib", "calib100.txt")
    lines = [ln.strip() for ln in open(src) if ln.strip() and not ln.startswith("#")][:4]
    calib = tmp_path / "calib.txt"
    calib.write_text("".join(os.path.join(os.path.dirname(src), ln) + "\n" for ln in lines))
    root = tmp_path / "run"
    r = subprocess.run([BIN, "run", "--root", str(root), "--max-images", "4", "--ks", "0", "1",
                        "--modes", "w4a8", "--sensitivity-images", "1", "--threads", "2",
                        "--calib-list", str(calib)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    # Ranked by the w4a8 sweep; the candidates carry INT4 weights (ONNX type 22).
    rep = json.loads((root / "sensitivity" / "w4a8" / "report.json").read_text())
    assert rep["mode"] == "w4a8"
    for k in (0, 1):
        res = json.loads((root / "results" / f"w4a8_k{k}.json").read_text())
        assert res["variant"]["mode"] == "w4a8"
        assert "bootstrap" in res
    onnx = [p for p in (root / "candidates").iterdir() if p.name.endswith("-w4a8-k0.onnx")]
    assert len(onnx) == 1, list((root / "candidates").iterdir())
    onnx = onnx[0]
    # INT4 storage: the file is far smaller than the float model's 5.0 MB.
    assert onnx.stat().st_size < 0.45 * os.path.getsize(
        os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx"))
    summary = (root / "summary.md").read_text()
    assert "| w4a8_k0 |" in summary and "| w4a8_k1 |" in summary
    assert "paired bootstrap" in summary
