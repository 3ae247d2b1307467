"""`lowbit calib` tensors against cv2 + Ultralytics' LetterBox arithmetic (the real peer).

Reference (research/yolo-coco.md §3.1, research/seed-spec.md §3): cv2.imread, BGR->RGB,
r = min(S/h, S/w), new = (round(w*r), round(h*r)) (half to even), cv2.resize INTER_LINEAR,
top/left = round(d/2 - 0.1), bottom/right = round(d/2 + 0.1), copyMakeBorder 114, CHW, /255.
Images cover odd paddings, up- and down-scaling, exact 2x (OpenCV's INTER_AREA shortcut), gray,
RGBA, 16-bit PNG, JPEG, and a JPEG with an EXIF orientation tag.
"""
import os
import struct
import subprocess

import cv2
import numpy as np
import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")

SIZES = [(500, 375), (333, 500), (424, 318), (500, 333), (200, 150), (640, 640), (1280, 720),
         (1280, 1280), (37, 999), (641, 479), (1, 1), (3, 700), (959, 17), (320, 320)]


def ultralytics_letterbox(path, size):
    img = cv2.imread(path)  # BGR
    assert img is not None, path
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    new_unpad = (int(round(w * r)), int(round(h * r)))
    dw, dh = (size - new_unpad[0]) / 2, (size - new_unpad[1]) / 2
    if (w, h) != new_unpad:
        img = cv2.resize(img, new_unpad, interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT,
                             value=(114, 114, 114))
    return np.ascontiguousarray(img.transpose(2, 0, 1)).astype(np.float32) / 255.0


def synthetic(w, h, rng, channels=3):
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([(xx * 255 // max(w - 1, 1)), (yy * 255 // max(h - 1, 1)),
                     ((xx + yy) * 7) % 256], axis=-1)[:, :, :channels]
    noise = rng.integers(0, 60, size=(h, w, channels))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def add_exif_orientation(jpeg_bytes, orientation):
    # APP1 "Exif" segment with a little-endian TIFF header and one IFD0 entry: 0x0112 = value.
    tiff = b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    payload = b"Exif\x00\x00" + tiff
    app1 = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    assert jpeg_bytes[:2] == b"\xff\xd8"
    return jpeg_bytes[:2] + app1 + jpeg_bytes[2:]


@pytest.fixture(scope="module")
def image_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    names = []
    for i, (w, h) in enumerate(SIZES):
        img = synthetic(w, h, rng)
        ext = ".png" if i % 2 == 0 else ".jpg"
        name = f"im{i:02d}_{w}x{h}{ext}"
        cv2.imwrite(str(d / name), img)
        names.append(name)
    cv2.imwrite(str(d / "gray.png"), synthetic(300, 200, rng, 1)[:, :, 0])
    rgba = np.concatenate([synthetic(250, 410, rng), rng.integers(0, 256, (410, 250, 1),
                                                                  dtype=np.uint8)], axis=-1)
    cv2.imwrite(str(d / "rgba.png"), rgba)
    cv2.imwrite(str(d / "deep16.png"), (synthetic(123, 321, rng).astype(np.uint16) * 257 + 3))
    ok, enc = cv2.imencode(".jpg", synthetic(400, 300, rng))
    (d / "exif6.jpg").write_bytes(add_exif_orientation(enc.tobytes(), 6))
    names += ["gray.png", "rgba.png", "deep16.png", "exif6.jpg"]
    # The EXIF tag must be honoured by the peer too, or this case tests nothing.
    assert cv2.imread(str(d / "exif6.jpg")).shape[:2] == (400, 300)
    return d, names


def run_calib(args):
    p = subprocess.run([LOWBIT, "calib"] + args, capture_output=True, text=True)
    return p


@pytest.mark.parametrize("size", [640, 320])
def test_calib_matches_cv2_letterbox(tmp_path, image_set, size):
    d, names = image_set
    lst = tmp_path / "list.txt"
    # Paths relative to --data-root; blank and comment lines are skipped.
    lst.write_text("# calibration list\n" + "\n".join(names[:8]) + "\n\n" +
                   "\n".join(names[8:]) + "\n")
    out = tmp_path / "sub" / "calib.npy"
    p = run_calib(["--list", str(lst), "--data-root", str(d), "--imgsz", str(size), "--out",
                   str(out)])
    assert p.returncode == 0, p.stderr
    with open(out, "rb") as f:
        head = f.read(10)
    assert head[:8] == b"\x93NUMPY\x01\x00"  # NPY v1.0
    arr = np.load(out)
    assert arr.dtype == np.float32 and arr.flags["C_CONTIGUOUS"]
    assert arr.shape == (len(names), 3, size, size)
    worst = 0.0
    for i, name in enumerate(names):
        ref = ultralytics_letterbox(str(d / name), size)
        diff = float(np.abs(arr[i] - ref).max())
        worst = max(worst, diff)
        assert diff <= 1.0 / 255 + 1e-7, f"{name}: max |diff| {diff}"
    # Bit parity is the goal: report it (and require it for the lossless PNGs).
    for i, name in enumerate(names):
        if name.endswith(".png"):
            ref = ultralytics_letterbox(str(d / name), size)
            assert np.array_equal(arr[i], ref), f"{name}: not bit-identical to cv2"
    print(f"imgsz {size}: worst max |diff| over {len(names)} images = {worst}")


def test_images_dir_and_max_images(tmp_path, image_set):
    d, names = image_set
    out = tmp_path / "c.npy"
    p = run_calib(["--images", str(d), "--max-images", "3", "--imgsz", "320", "--out", str(out)])
    assert p.returncode == 0, p.stderr
    arr = np.load(out)
    first = sorted(os.listdir(d))[:3]
    assert arr.shape == (3, 3, 320, 320)
    for i, name in enumerate(first):
        assert np.abs(arr[i] - ultralytics_letterbox(str(d / name), 320)).max() <= 1 / 255


def test_list_relative_to_its_folder(tmp_path, image_set):
    d, names = image_set
    lst = d / "rel_list.txt"
    lst.write_text(names[0] + "\n" + names[1] + "\n")
    out = tmp_path / "r.npy"
    p = run_calib(["--list", str(lst), "--imgsz", "64", "--out", str(out)])
    assert p.returncode == 0, p.stderr
    assert np.load(out).shape == (2, 3, 64, 64)
    lst.unlink()


def test_errors_name_the_file(tmp_path, image_set):
    d, names = image_set
    lst = tmp_path / "missing.txt"
    lst.write_text(names[0] + "\nno_such_image.jpg\n")
    out = tmp_path / "x.npy"
    p = run_calib(["--list", str(lst), "--data-root", str(d), "--out", str(out)])
    assert p.returncode != 0 and "no_such_image.jpg" in p.stderr
    assert not out.exists()

    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2000))
    lst.write_text(str(d / names[0]) + "\n" + str(bad) + "\n")
    p = run_calib(["--list", str(lst), "--out", str(out)])
    assert p.returncode != 0 and "corrupt.jpg" in p.stderr
    assert not out.exists()  # nothing half-written is left behind
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".x.npy")]

    empty = tmp_path / "empty.txt"
    empty.write_text("\n# nothing\n")
    p = run_calib(["--list", str(empty), "--out", str(out)])
    assert p.returncode != 0 and "empty" in p.stderr
