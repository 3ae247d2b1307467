// Each op family registers its reference kernels here. One .cpp file (or a few) per family.
#pragma once

namespace lowbit {

class KernelRegistry;

// elementwise_binary.cpp: two-operand and variadic ops with NumPy broadcasting (Add, Sub, Mul,
// Div, Mod, Pow, Equal, Less, ..., And, Or, Xor, Sum, Mean, Min, Max).
void register_elementwise_binary_kernels(KernelRegistry& r);
// elementwise_unary.cpp: unary math and activations (Sigmoid, Relu, ..., Sqrt, Exp, Log, Erf,
// Floor, Not, ...).
void register_elementwise_unary_kernels(KernelRegistry& r);
// elementwise_select.cpp: Where, Clip, PRelu.
void register_elementwise_select_kernels(KernelRegistry& r);
// tensor_ops.cpp: data movement and shape ops (Reshape, Transpose, Concat, Split, Slice, Gather,
// GatherElements, Expand, Tile, Range, Shape, Constant, ConstantOfShape, Identity, Pad, TopK, ...).
void register_tensor_kernels(KernelRegistry& r);
// nn.cpp: Conv, MaxPool, AveragePool, GlobalAveragePool, MatMul, Gemm, Softmax,
// BatchNormalization, Resize, GridSample.
void register_nn_kernels(KernelRegistry& r);
// quant.cpp: QuantizeLinear, DequantizeLinear, Cast.
void register_quant_kernels(KernelRegistry& r);
// reduce.cpp: ReduceMax, ReduceMean, ReduceSum, ArgMax.
void register_reduce_kernels(KernelRegistry& r);

}  // namespace lowbit
