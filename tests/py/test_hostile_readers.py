"""Hostile inputs at the command line (issue 14, the readers' classes): for each bad file, the
exit code, the `lowbit <cmd>: error: ...` line naming the file and the fault, and that no file
in the working folder changed or appeared (no partial output, no input destroyed).

Each case builds its inputs in a fresh folder, snapshots every file (path -> bytes), runs one
command line, and compares the snapshot after. The ONNX files are written by hand in protobuf
wire format, so the test needs neither onnx nor numpy to build its hostile inputs.
"""
import json
import os
import shutil
import struct
import subprocess

import pytest

BIN = os.environ.get("LOWBIT_BIN", "build/lowbit")
SRC = os.environ.get("LOWBIT_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
ASSETS = os.path.join(SRC, "assets")
MODEL = os.path.join(ASSETS, "shapes-yolov10m-w0p1875-raw.onnx")
JPEG = os.path.join(ASSETS, "val", "images", "000000000014.jpg")


def snapshot(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            if os.path.islink(p):
                out[p] = "link:" + os.readlink(p)
            else:
                with open(p, "rb") as fh:
                    out[p] = fh.read()
    return out


def run_bad(tmp_path, args, code, *needles):
    """Runs lowbit with args; asserts the exit code, one error line containing every needle, and
    that nothing under tmp_path changed or appeared."""
    before = snapshot(tmp_path)
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, cwd=tmp_path,
                       timeout=300)
    after = snapshot(tmp_path)
    cmd = args[0]
    codes = code if isinstance(code, tuple) else (code,)
    assert r.returncode in codes, f"exit {r.returncode}, expected {code}:\n{r.stderr}"
    assert f"lowbit {cmd}: error: " in r.stderr, r.stderr
    for n in needles:
        assert n in r.stderr, f"{n!r} not in:\n{r.stderr}"
    assert "terminate called" not in r.stderr and "Aborted" not in r.stderr, r.stderr
    assert after == before, f"files changed: {sorted(set(after) ^ set(before))}"
    return r


# --- protobuf wire format, enough for ModelProto { graph { initializer, node, input, output } } --
def varint(v):
    out = bytearray()
    v &= (1 << 64) - 1
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def fv(field, v):
    return varint(field << 3) + varint(v)


def fb(field, b):
    if isinstance(b, str):
        b = b.encode()
    return varint((field << 3) | 2) + varint(len(b)) + b


def tensor(name, dims, raw=None, external=None, dtype=1):
    t = b"".join(fv(1, d) for d in dims) + fv(2, dtype) + fb(8, name)
    if raw is not None:
        t += fb(9, raw)
    for k, v in (external or {}).items():
        t += fb(13, fb(1, k) + fb(2, v))
    if external:
        t += fv(14, 1)
    return t


def value_info(name, dims):
    shape = b"".join(fb(1, fv(1, d)) for d in dims)
    return fb(1, name) + fb(2, fb(1, fv(1, 1) + fb(2, shape)))


def model(initializers, nodes=(), inputs=(), outputs=()):
    g = b"".join(fb(1, n) for n in nodes) + fb(2, "g")
    g += b"".join(fb(5, t) for t in initializers)
    g += b"".join(fb(11, value_info(*i)) for i in inputs)
    g += b"".join(fb(12, value_info(*o)) for o in outputs)
    return fv(1, 8) + fb(7, g) + fb(8, fb(1, "") + fv(2, 17))


def node(op, ins, outs, name):
    return b"".join(fb(1, i) for i in ins) + b"".join(fb(2, o) for o in outs) + fb(3, name) + fb(4, op)


def add_model(w_tensor):
    """y = x + w, w an initializer of 4 floats (or whatever w_tensor declares)."""
    return model([w_tensor], [node("Add", ["x", "w"], ["y"], "add")], [("x", [4])], [("y", [4])])


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return path


# --- ONNX: sizes from the file --------------------------------------------------------------------
def test_onnx_dims_overflowing_int64(tmp_path):
    m = write(tmp_path / "m.onnx", add_model(tensor("w", [1 << 32, 1 << 32], raw=b"")))
    run_bad(tmp_path, ["info", m], 2, "m.onnx", "tensor 'w'", "64 bits")


def test_onnx_dims_of_a_trillion(tmp_path):
    m = write(tmp_path / "m.onnx", add_model(tensor("w", [10**12], raw=b"\0" * 16)))
    run_bad(tmp_path, ["info", m], 2, "m.onnx", "tensor 'w'", "limit")


def test_onnx_raw_data_shorter_than_dims(tmp_path):
    m = write(tmp_path / "m.onnx", add_model(tensor("w", [10**8], raw=b"\0" * 16)))
    run_bad(tmp_path, ["smoke", m, "--runs", "1", "--warmup", "0"], 2, "m.onnx",
            "raw_data has 16 bytes")


def test_onnx_truncated(tmp_path):
    good = add_model(tensor("w", [4], raw=b"\0" * 16))
    m = write(tmp_path / "m.onnx", good[: len(good) - 7])
    run_bad(tmp_path, ["info", m], 2, "m.onnx", "not a valid ONNX model")


def test_onnx_is_a_directory(tmp_path):
    os.makedirs(tmp_path / "d.onnx")
    run_bad(tmp_path, ["info", tmp_path / "d.onnx"], 1, "d.onnx", "is a directory")


# --- ONNX: external data ------------------------------------------------------------------------
@pytest.fixture
def secret(tmp_path):
    p = write(tmp_path / "secret" / "passwd", b"SECRET!!" * 2)
    return p


@pytest.mark.parametrize("location,needle", [
    ("ABS", "absolute path"),
    ("../secret/passwd", "leaves the model's folder"),
    ("a/../../secret/passwd", "leaves the model's folder"),
    ("link/passwd", "outside the model's folder"),
])
def test_external_data_outside_the_model_folder(tmp_path, secret, location, needle):
    os.makedirs(tmp_path / "model")
    os.symlink(tmp_path / "secret", tmp_path / "model" / "link")
    if location == "ABS":
        location = secret
    m = write(tmp_path / "model" / "m.onnx",
              add_model(tensor("w", [4], external={"location": str(location)})))
    out = tmp_path / "model" / "q.onnx"
    r = run_bad(tmp_path, ["quantize", m, "--out", out, "--dq-only"], 2, "m.onnx",
                "tensor 'w'", needle)
    assert not out.exists()
    assert "SECRET" not in r.stderr + r.stdout


@pytest.mark.parametrize("kv,needle", [
    ({"offset": "abc"}, "offset 'abc' is not a non-negative integer"),
    ({"offset": "-8"}, "offset '-8' is not a non-negative integer"),
    ({"length": "9999999999999999999999"}, "is not a non-negative integer"),
    ({"offset": "8"}, "holds 16 bytes; offset 8 + 16 bytes"),
    ({"length": "8"}, "length 8 != 16"),
])
def test_external_data_offsets(tmp_path, kv, needle):
    write(tmp_path / "w.bin", b"\0" * 16)
    m = write(tmp_path / "m.onnx",
              add_model(tensor("w", [4], external={"location": "w.bin", **kv})))
    run_bad(tmp_path, ["info", m], 2, "m.onnx", needle)


# --- NPY ----------------------------------------------------------------------------------------
def npy(descr, shape, data=b"", major=1, header_len=None):
    d = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }\n" % (descr, shape)
    hl = len(d) if header_len is None else header_len
    pre = b"\x93NUMPY" + bytes([major, 0]) + (struct.pack("<H", hl) if major == 1
                                              else struct.pack("<I", hl))
    return pre + d.encode() + data


@pytest.mark.parametrize("name,data,needle", [
    ("huge.npy", npy("<f4", "(1000000000000, 3, 8, 8)"), "limit"),
    ("digits.npy", npy("<f4", "(12345678901234567890123456, 3, 8, 8)"), "does not fit in 64 bits"),
    ("hlen.npy", npy("<f4", "(1, 3, 8, 8)", major=2, header_len=0xFFFFFFFF),
     "header length 4294967295 is above the limit"),
    ("short.npy", npy("<f4", "(4, 3, 8, 8)", b"\0" * 64), "truncated NPY data"),
    ("v7.npy", npy("<f4", "(1, 3, 8, 8)", major=7), "NPY format version 7.0 is not supported"),
    ("int.npy", npy("<i4", "(1, 3, 8, 8)", b"\0" * 768), "must be float32 (or float16), found int32"),
])
def test_calibration_npy(tmp_path, name, data, needle):
    p = write(tmp_path / name, data)
    out = tmp_path / "q.onnx"
    # 2 for invalid data, 1 for an unsupported (but well-formed) version.
    run_bad(tmp_path, ["quantize", MODEL, "--calib", p, "--out", out], (1, 2), name, needle)


@pytest.mark.parametrize("name,data,needle", [
    ("huge.npy", npy("<f4", "(1000000000000, 1)"), "limit"),
    ("hlen.npy", npy("<f4", "(1, 1)", major=2, header_len=0xFFFFFFFF), "above the limit"),
])
def test_smoke_input_npy(tmp_path, name, data, needle):
    p = write(tmp_path / name, data)
    run_bad(tmp_path, ["smoke", MODEL, "--input", p, "--runs", "1", "--warmup", "0"], 2, name,
            needle)


# --- ranges files ---------------------------------------------------------------------------------
@pytest.mark.parametrize("tensors,needle", [
    ({"images": {"amax": 1.0, "min": "zero"}}, "tensors.images.min: expected a number, found a string"),
    ({"images": {"amax": "1"}}, "tensors.images.amax: expected a number, found a string"),
    ({"images": [1, 2]}, "tensors.images: expected an object, found an array"),
    ({"images": {"amax": 1, "count": 2.5}}, "tensors.images.count: expected an integer"),
])
def test_ranges_file_with_wrong_types(tmp_path, tensors, needle):
    r = write(tmp_path / "r.json", json.dumps({"format": "lowbit-ranges", "tensors": tensors}))
    out = tmp_path / "q.onnx"
    run_bad(tmp_path, ["quantize", MODEL, "--ranges", r, "--out", out], 2, "r.json", needle)


# --- COCO JSON ----------------------------------------------------------------------------------
GT = {"images": [{"id": 1, "width": 10, "height": 10}],
      "categories": [{"id": 1, "name": "a"}],
      "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "area": 16},
                      {"id": 5, "image_id": 1, "category_id": 1, "bbox": [4, 4, 4, 4], "area": 16}]}
DT = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 4, 4], "score": 0.9}]


def test_coco_duplicate_annotation_ids(tmp_path):
    gt = write(tmp_path / "gt.json", json.dumps(GT))
    dt = write(tmp_path / "dt.json", json.dumps(DT))
    run_bad(tmp_path, ["cocoeval", "--gt", gt, "--dt", dt, "--json", tmp_path / "s.json"], 2,
            "gt.json", "annotations[0] and annotations[1] have the same id 5")


def test_coco_bbox_of_wrong_type(tmp_path):
    gt = dict(GT, annotations=GT["annotations"][:1])
    gt = write(tmp_path / "gt.json", json.dumps(gt))
    dt = write(tmp_path / "dt.json", json.dumps([dict(DT[0], bbox="0 0 4 4")]))
    run_bad(tmp_path, ["cocoeval", "--gt", gt, "--dt", dt], 2, "dt.json",
            "'bbox' must be an array of 4 numbers, found a string")


def test_coco_deep_nesting(tmp_path):
    gt = write(tmp_path / "gt.json", "[" * 200000 + "]" * 200000)
    dt = write(tmp_path / "dt.json", json.dumps(DT))
    run_bad(tmp_path, ["cocoeval", "--gt", gt, "--dt", dt], 2, "gt.json")


# --- image lists and images -----------------------------------------------------------------------
def test_image_list_with_a_directory(tmp_path):
    os.makedirs(tmp_path / "sub")
    lst = write(tmp_path / "list.txt", "sub\n")
    run_bad(tmp_path, ["calib", "--list", lst, "--out", tmp_path / "c.npy"], 1,
            "list.txt:1:", "is a directory, not an image file")


def test_truncated_jpeg(tmp_path):
    with open(JPEG, "rb") as f:
        data = f.read()
    write(tmp_path / "cut.jpg", data[: len(data) // 2])
    lst = write(tmp_path / "list.txt", "cut.jpg\n")
    run_bad(tmp_path, ["calib", "--list", lst, "--out", tmp_path / "c.npy"], 2,
            "cut.jpg is a truncated JPEG")


# --- stale temp files ---------------------------------------------------------------------------
def test_stale_temp_file_of_a_killed_run_is_removed(tmp_path):
    stale = write(tmp_path / ".c.npy.tmp.999999999", b"half written")
    lst = write(tmp_path / "list.txt", "img.jpg\n")
    shutil.copy(JPEG, tmp_path / "img.jpg")
    r = subprocess.run([BIN, "calib", "--list", lst, "--out", tmp_path / "c.npy", "--imgsz", "64"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(stale)
    assert sorted(os.listdir(tmp_path)) == ["c.npy", "img.jpg", "list.txt"]
