"""Writes the seed corpora of the fuzz targets (tests/fuzz/seeds/<target>/) from the bundled
assets and small hand-made files. Run once with the test venv (numpy, onnx); the output is
committed, so fuzzing needs neither.

    .venv/bin/python tests/fuzz/make_seeds.py
"""
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
S = os.path.join(ROOT, "tests", "fuzz", "seeds")


def out(target, name):
    os.makedirs(os.path.join(S, target), exist_ok=True)
    return os.path.join(S, target, name)


def coco():
    gt = json.load(open(os.path.join(ROOT, "assets", "val", "instances_val.json")))
    imgs = gt["images"][:3]
    ids = {i["id"] for i in imgs}
    anns = [a for a in gt["annotations"] if a["image_id"] in ids][:12]
    for a in anns:
        a.pop("segmentation", None)
    cats = gt["categories"][:10]
    json.dump({"images": imgs, "annotations": anns, "categories": cats},
              open(out("coco", "gt_small.json"), "w"))
    seg = [dict(anns[0], segmentation=[[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]], iscrowd=0)]
    json.dump({"images": imgs[:1], "annotations": seg, "categories": cats[:2]},
              open(out("coco", "gt_seg.json"), "w"))
    dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"],
             "score": 0.5 + 0.01 * i} for i, a in enumerate(anns)]
    json.dump(dets, open(out("coco", "detections.json"), "w"))
    json.dump([], open(out("coco", "empty_results.json"), "w"))


def npy():
    np.save(out("npy", "calib_f32.npy"), np.random.RandomState(0).rand(2, 3, 4, 4).astype(np.float32))
    np.save(out("npy", "calib_f16.npy"), np.random.RandomState(1).rand(2, 3, 2, 2).astype(np.float16))
    np.save(out("npy", "i64.npy"), np.arange(6, dtype=np.int64).reshape(2, 3))
    np.save(out("npy", "u8_scalar.npy"), np.array(7, dtype=np.uint8))
    np.save(out("npy", "bool.npy"), np.array([True, False]))
    for name, version, shape in (("v2.npy", (2, 0), (2, 2)), ("v3.npy", (3, 0), (1, 2))):
        with open(out("npy", name), "wb") as f:
            np.lib.format.write_array(f, np.ones(shape, np.float32), version=version)


def ranges_and_records():
    r = {"format": "lowbit-ranges", "version": 1, "method": "entropy", "mode": "int8",
         "percentile": 99.99, "samples": 4, "model": "m.onnx",
         "tensors": {"images": {"amax": 1.0, "min": 0.0, "max": 1.0, "count": 123, "group": -1},
                     "x": {"amax": 2.5, "min": -2.5, "max": 2.0, "count": 5, "group": 0},
                     "y": {"amax": 2.5, "group": 0}}}
    json.dump(r, open(out("ranges", "ranges.json"), "w"), indent=1)
    rec = {"step": "quantize", "argv": [["lowbit", "quantize", "m.onnx", "--out", "q.onnx"]],
           "inputs": {"m.onnx": "0123456789abcdef"}, "input_fingerprint": "0011223344556677",
           "outputs": {"q.onnx": "fedcba9876543210"}, "output_fingerprint": "8899aabbccddeeff",
           "seconds": 1.5, "finished": "2026-01-01T00:00:00Z"}
    json.dump(rec, open(out("run_record", "step.json"), "w"), indent=2)
    open(out("image_list", "list.txt"), "w").write("# calibration images\na.jpg\n\nb.png\n./a.jpg\n")
    open(out("image_list", "dir.txt"), "w").write("sub\ndangling.jpg\n~/x.jpg\n")


def onnx_models():
    X = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    Y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])
    inits = [numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(1, 4), "w"),
             numpy_helper.from_array(np.array([1], np.int64), "starts"),
             numpy_helper.from_array(np.array([3], np.int64), "ends"),
             numpy_helper.from_array(np.array([1], np.int64), "axes"),
             helper.make_tensor("typed", TensorProto.FLOAT, [2], [1.0, 2.0])]
    nodes = [helper.make_node("Add", ["x", "w"], ["s"], name="add"),
             helper.make_node("Slice", ["s", "starts", "ends", "axes"], ["y"], name="slice"),
             helper.make_node("Constant", [], ["c"], name="const",
                              value=helper.make_tensor("cv", TensorProto.INT64, [2], [1, 2]))]
    m = helper.make_model(helper.make_graph(nodes, "g", [X], [Y], inits),
                          opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    onnx.save(m, out("onnx", "slice.onnx"))
    # External data: [2,2] float at offset 64 of w.bin (fuzz_onnx.cpp writes w.bin).
    e = TensorProto()
    e.name, e.data_type = "e", TensorProto.FLOAT
    e.dims.extend([2, 2])
    e.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "w.bin"), ("offset", "64"), ("length", "16")):
        kv = e.external_data.add()
        kv.key, kv.value = k, v
    g2 = helper.make_graph([helper.make_node("Add", ["x2", "e"], ["y2"], name="add_e")], "g2",
                           [helper.make_tensor_value_info("x2", TensorProto.FLOAT, [2, 2])],
                           [helper.make_tensor_value_info("y2", TensorProto.FLOAT, [2, 2])], [e])
    m2 = helper.make_model(g2, opset_imports=[helper.make_opsetid("", 17)])
    m2.ir_version = 8
    open(out("onnx", "external.onnx"), "wb").write(m2.SerializeToString())
    th = helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then", [],
                           [helper.make_tensor_value_info("t", TensorProto.FLOAT, [1, 4])])
    el = helper.make_graph([helper.make_node("Neg", ["x"], ["f"])], "else", [],
                           [helper.make_tensor_value_info("f", TensorProto.FLOAT, [1, 4])])
    g3 = helper.make_graph([helper.make_node("If", ["cond"], ["o"], name="if", then_branch=th,
                                             else_branch=el)], "g3", [X],
                           [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1, 4])],
                           [numpy_helper.from_array(np.array(True), "cond")])
    m3 = helper.make_model(g3, opset_imports=[helper.make_opsetid("", 17)])
    m3.ir_version = 8
    onnx.save(m3, out("onnx", "if.onnx"))
    t = numpy_helper.from_array(np.ones((2, 3), np.float16), "t")
    open(out("onnx", "tensor.pb"), "wb").write(t.SerializeToString())


if __name__ == "__main__":
    coco()
    npy()
    ranges_and_records()
    onnx_models()
