// float16 nodes on float32-only kernels, the way ONNX Runtime's CPU execution provider runs them.
//
// ORT's CPU EP has no float16 kernel for most ops on x86 (Conv, MatMul, MaxPool, Softmax,
// Sigmoid, Mul, ...). Its InsertCastTransformer then puts a Cast to float32 on each float16
// input, runs the float32 kernel and a Cast back to float16 on each float16 output
// (onnxruntime/core/optimizer/insert_cast_transformer.cc). Float16Fallback does the same for one
// node: when the wrapped kernel accepts the node's dtypes it runs as is (ops that handle float16
// natively and exactly: Cast, QuantizeLinear/DequantizeLinear with float16 scales, Concat,
// Reshape, elementwise ops, ...); otherwise the node is prepared with every float16 input seen
// as float32, and run() converts those inputs (exact), runs the float32 kernel and rounds every
// float32 output to float16 (nearest even), so each float16 tensor is rounded where the graph
// stores it.
//
// Known difference from ORT: after inserting the Casts, ORT removes each float16 -> float32
// pair between two nodes it converted (RemoveDuplicateCastTransformer), so a chain such as
// DequantizeLinear -> Conv -> Sigmoid -> Mul runs in float32 throughout and only the inputs of
// nodes with float16 kernels (QuantizeLinear, Concat, Split, ...) and the graph outputs are
// rounded. Doing that here needs the executor to keep such tensors in float32; per node, the
// rounding of the stored float16 tensor is what the model file says.
//
// Scratch float32 tensors are allocated in prepare(); run() only converts and forwards.
#pragma once

#include <memory>

#include "runtime/registry.h"

namespace lowbit {

std::unique_ptr<Kernel> make_float16_fallback(KernelFactory factory);

}  // namespace lowbit
