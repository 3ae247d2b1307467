"""`lowbit cocoeval` against pycocotools (the real peer) on generated COCO cases.

The cases cover what pycocotools' rules make subtle (research/yolo-coco.md §4.7): crowd GTs,
GT `area` differing from the box area, areas exactly on the 32^2/96^2 bounds, more than 100
detections per (image, category), tied scores, images without GT, categories without GT,
results on images with no GT, a GT whose id is 0, an --img-ids subset and empty results.
`make_case` is also used by bench/cocoeval_bench.py.
"""
import contextlib
import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest

LOWBIT = os.environ.get("LOWBIT_BIN", "")


def make_case(seed, n_images=60, n_cats=12, gt_per_image=6, max_dets=150, crowd_frac=0.05,
              tie_levels=0, gt_id_zero=False, empty_images_frac=0.1, unused_cats=2):
    """Returns (gt_dict, results_list)."""
    rng = np.random.default_rng(seed)
    img_ids = rng.choice(np.arange(1, 10 * n_images + 1), size=n_images, replace=False)
    cat_ids = np.sort(rng.choice(np.arange(1, 3 * n_cats + 1), size=n_cats, replace=False))
    images = []
    for i in img_ids:
        w, h = int(rng.integers(64, 900)), int(rng.integers(64, 900))
        images.append({"id": int(i), "file_name": f"{int(i):012d}.jpg", "width": w, "height": h})
    rng.shuffle(images)  # file order is not id order
    categories = [{"id": int(c), "name": f"cat{int(c)}", "supercategory": "x"} for c in cat_ids]
    gt_cats = cat_ids[: max(1, n_cats - unused_cats)]  # the rest have no GT at all

    anns = []
    ann_id = 0 if gt_id_zero else 1
    boxes_by_image = {}
    for im in images:
        if rng.random() < empty_images_frac:
            continue
        n = int(rng.poisson(gt_per_image))
        for _ in range(n):
            w = float(rng.uniform(2, im["width"] / 2))
            h = float(rng.uniform(2, im["height"] / 2))
            x = float(rng.uniform(0, im["width"] - w))
            y = float(rng.uniform(0, im["height"] - h))
            r = rng.random()
            if r < 0.04:
                area = 1024.0  # exactly on the small/medium bound
            elif r < 0.08:
                area = 9216.0  # exactly on the medium/large bound
            else:
                area = w * h * float(rng.uniform(0.4, 1.0))  # mask area != box area
            cat = int(rng.choice(gt_cats))
            anns.append({"id": ann_id, "image_id": im["id"], "category_id": cat,
                         "bbox": [x, y, w, h], "area": area,
                         "iscrowd": int(rng.random() < crowd_frac),
                         "segmentation": [[x, y, x + w, y, x + w, y + h]]})
            boxes_by_image.setdefault(im["id"], []).append((cat, x, y, w, h))
            ann_id += 1
    gt = {"info": {"description": "generated"}, "images": images, "annotations": anns,
          "categories": categories}

    results = []
    for im in images:
        nd = int(rng.integers(0, max_dets + 1))
        gts = boxes_by_image.get(im["id"], [])
        for _ in range(nd):
            if gts and rng.random() < 0.6:
                cat, x, y, w, h = gts[int(rng.integers(len(gts)))]
                j = rng.normal(0, 0.08, 4)
                x, y = x + j[0] * w, y + j[1] * h
                w, h = max(0.5, w * (1 + j[2])), max(0.5, h * (1 + j[3]))
                if rng.random() < 0.1:
                    cat = int(rng.choice(cat_ids))  # wrong class, maybe one without GT
            else:
                cat = int(rng.choice(cat_ids))
                w = float(rng.uniform(1, im["width"] / 2))
                h = float(rng.uniform(1, im["height"] / 2))
                x = float(rng.uniform(-5, im["width"] - w))
                y = float(rng.uniform(-5, im["height"] - h))
                if rng.random() < 0.03:
                    w, h = 32.0, 32.0  # area exactly 1024
            score = float(rng.random())
            if tie_levels:
                score = float(int(score * tie_levels)) / tie_levels
            results.append({"image_id": im["id"], "category_id": cat,
                            "bbox": [float(x), float(y), float(w), float(h)], "score": score})
    return gt, results


def pycocotools_stats(gt, results, img_ids=None):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = json.loads(json.dumps(gt))
        coco_gt.createIndex()
        if results:
            coco_dt = coco_gt.loadRes(json.loads(json.dumps(results)))
        else:
            # loadRes cannot take an empty list; an empty results set is this.
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt["images"]), "categories": gt["categories"],
                               "annotations": []}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        if img_ids is not None:
            ev.params.imgIds = img_ids
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    per_cat = []
    prec = ev.eval["precision"]
    for k in range(prec.shape[2]):
        p = prec[:, :, k, 0, 2]
        per_cat.append(float(np.mean(p[p > -1])) if (p > -1).any() else -1.0)
    return [float(s) for s in ev.stats], per_cat


def lowbit_stats(tmp_path, gt, results, img_ids=None, name="case"):
    gt_path = tmp_path / f"{name}_gt.json"
    dt_path = tmp_path / f"{name}_dt.json"
    out_path = tmp_path / f"{name}_out.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(results))
    cmd = [LOWBIT, "cocoeval", "--gt", str(gt_path), "--dt", str(dt_path), "--json",
           str(out_path)]
    if img_ids is not None:
        cmd += ["--img-ids", ",".join(str(i) for i in img_ids)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    out = json.loads(out_path.read_text())
    return out["stats"], [c["ap"] for c in out["per_category"]], p.stdout


CASES = {
    "basic": dict(seed=1),
    "crowds": dict(seed=2, crowd_frac=0.3),
    "dense_over_100": dict(seed=3, n_images=20, n_cats=3, gt_per_image=12, max_dets=400,
                           unused_cats=0),
    "tied_scores": dict(seed=4, tie_levels=7),
    "tied_scores_dense": dict(seed=5, tie_levels=3, n_cats=4, max_dets=300),
    "many_empty_images": dict(seed=6, empty_images_frac=0.6),
    "unused_categories": dict(seed=7, n_cats=10, unused_cats=6),
    "gt_id_zero": dict(seed=8, gt_id_zero=True, n_images=10),
    "sparse": dict(seed=9, n_images=80, gt_per_image=1, max_dets=4),
}


@pytest.fixture(scope="module", autouse=True)
def _need_binary():
    if not LOWBIT or not os.path.exists(LOWBIT):
        pytest.fail("LOWBIT_BIN must point at the lowbit binary")


def assert_stats_equal(ours, ref, what):
    assert len(ours) == len(ref), what
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert abs(a - b) <= 1e-12, f"{what}: stat {i}: lowbit {a!r} vs pycocotools {b!r}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_pycocotools(tmp_path, name):
    gt, results = make_case(**CASES[name])
    ref, ref_cat = pycocotools_stats(gt, results)
    ours, our_cat, stdout = lowbit_stats(tmp_path, gt, results, name=name)
    assert_stats_equal(ours, ref, name)
    assert_stats_equal(our_cat, ref_cat, name + " per-category AP")
    # The printed summary is pycocotools' format.
    assert "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]" in stdout
    assert len(stdout.strip().splitlines()) == 12


def test_img_ids_subset(tmp_path):
    gt, results = make_case(seed=11)
    ids = sorted(im["id"] for im in gt["images"])[::3]
    ref, _ = pycocotools_stats(gt, results, img_ids=ids)
    ours, _, _ = lowbit_stats(tmp_path, gt, results, img_ids=ids, name="subset")
    assert_stats_equal(ours, ref, "img_ids subset")


def test_empty_results(tmp_path):
    gt, _ = make_case(seed=12)
    ref, _ = pycocotools_stats(gt, [])
    ours, _, _ = lowbit_stats(tmp_path, gt, [], name="empty")
    assert_stats_equal(ours, ref, "empty results")
    assert ours[0] == 0.0


def test_no_gt_at_all_gives_minus_one(tmp_path):
    gt, results = make_case(seed=13)
    gt["annotations"] = []
    ref, _ = pycocotools_stats(gt, results)
    ours, _, _ = lowbit_stats(tmp_path, gt, results, name="nogt")
    assert ref == [-1.0] * 12
    assert_stats_equal(ours, ref, "no GT")


def run_fail(args):
    p = subprocess.run([LOWBIT, "cocoeval"] + args, capture_output=True, text=True)
    assert p.returncode != 0
    return p.stderr


def test_bad_inputs_name_the_file(tmp_path):
    gt, results = make_case(seed=14, n_images=5)
    good_gt = tmp_path / "gt.json"
    good_gt.write_text(json.dumps(gt))
    good_dt = tmp_path / "dt.json"
    good_dt.write_text(json.dumps(results))

    bad = tmp_path / "truncated.json"
    bad.write_text(json.dumps(results)[:-20])
    err = run_fail(["--gt", str(good_gt), "--dt", str(bad)])
    assert "truncated.json" in err and "malformed JSON" in err

    not_array = tmp_path / "object.json"
    not_array.write_text(json.dumps({"annotations": results}))
    assert "object.json" in run_fail(["--gt", str(good_gt), "--dt", str(not_array)])

    no_score = tmp_path / "noscore.json"
    no_score.write_text(json.dumps([{k: v for k, v in r.items() if k != "score"}
                                    for r in results]))
    err = run_fail(["--gt", str(good_gt), "--dt", str(no_score)])
    assert "noscore.json" in err and "score" in err

    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps([{"image_id": 10**9, "category_id": 1, "bbox": [0, 0, 1, 1],
                                    "score": 0.5}]))
    assert "1000000000" in run_fail(["--gt", str(good_gt), "--dt", str(foreign)])

    gt_no_area = json.loads(json.dumps(gt))
    del gt_no_area["annotations"][0]["area"]
    p = tmp_path / "gt_no_area.json"
    p.write_text(json.dumps(gt_no_area))
    err = run_fail(["--gt", str(p), "--dt", str(good_dt)])
    assert "gt_no_area.json" in err and "area" in err

    err = run_fail(["--gt", str(tmp_path / "missing.json"), "--dt", str(good_dt)])
    assert "missing.json" in err


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
