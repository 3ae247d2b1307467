"""Where a Q/DQ model quantizes, and with which scales: one comparable summary of any
QuantizeLinear/DequantizeLinear ONNX model (lowbit's or ModelOpt's).

summarize(model) -> {"CONSUMER_NODE:INPUT_INDEX": {"tensor": NAME, "kind": "activation"|"weight",
                                                   "scale": [floats], "zero_point": [ints]}}
for every input of a non-Q/DQ node that a DequantizeLinear feeds. `tensor` is the quantized
original tensor: the QuantizeLinear's input, or the initializer behind a DQ-only weight (the
name of a weight initializer is taken as written by the tool, so weights are compared by their
consumer, not by name). Shared by tests/py/test_modelopt_golden.py and tools/modelopt_golden.py.
"""
import numpy as np
from onnx import numpy_helper


def summarize(model):
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    consts = {n.output[0]: n for n in g.node if n.op_type == "Constant"}
    producer = {o: n for n in g.node for o in n.output}

    def value(name):
        if name in inits:
            return numpy_helper.to_array(inits[name])
        if name in consts:
            return numpy_helper.to_array(consts[name].attribute[0].t)
        return None

    out = {}
    for n in g.node:
        if n.op_type in ("QuantizeLinear", "DequantizeLinear", "Constant"):
            continue
        for i, x in enumerate(n.input):
            dq = producer.get(x)
            if dq is None or dq.op_type != "DequantizeLinear":
                continue
            q = producer.get(dq.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                src = q.input[0]
                kind = "weight" if value(src) is not None else "activation"
            else:
                src = dq.input[0]
                kind = "weight"
            scale = value(dq.input[1])
            zp = value(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else None
            out[f"{n.name}:{i}"] = {
                "tensor": src, "kind": kind,
                "scale": [float(v) for v in np.asarray(scale, np.float64).ravel()],
                "zero_point": ([] if zp is None else
                               [float(v) for v in np.asarray(zp).astype(np.float64).ravel()]),
            }
    return out
