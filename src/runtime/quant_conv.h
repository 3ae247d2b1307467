// QuantConv, the runtime's public low-precision conv: a 2-D Conv of quantized values through
// oneDNN's low-precision kernels, for measuring quantization (sensitivity's local-sqnr). The
// implementation lives with the CPU kernels (kernels/cpu/quant_conv.cpp); callers outside
// runtime/ include only this header. It computes acc[m] = sum(x * w) over the input and
// weight *values* (no scales, no bias), exactly where the float32 conv of the fake-quantized
// tensors is exact up to its rounding order:
//  - Int8: x and w are int8 codes; the products are summed exactly in int32 (VNNI/AMX
//    kernels), then converted to float32.
//  - Fp8: x and w are FP8 E4M3 values carried as bfloat16. An E4M3 value has at most 4
//    significant bits, so it is exact in bfloat16 and the product of two is exact in float32;
//    the kernels sum the products in float32 as a float32 conv does.
// The caller multiplies by the scales (input scale times weight scale of each output channel)
// and adds the bias. Measured on YOLOv10m's 117 convs (320x320, width 0.1875, one thread,
// AVX-512 VNNI/BF16): int8 3.6-4.7 ms, bf16 6.4 ms, the best float32 kernels 10.4-11.9 ms.
//
// Only exact kernels are used: without VNNI/AMX, oneDNN's int8 convs sum pairs of u8*s8 products
// in int16 with saturation, so create() refuses those and reference implementations (1000x
// slower); the caller keeps the float simulation.
//
// Single-threaded: a QuantConv runs on the calling thread with its own stream and scratchpad,
// so different QuantConvs may run at the same time on different threads (each one at a time).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/tensor.h"
#include "ir/graph.h"

namespace lowbit {

enum class QuantConvValues { Int8, Fp8 };

class QuantConv {
public:
    // node: a Conv with 4-D input `x` and output `y` of batch 1 (logical NCHW shapes);
    // weights: its weight values in ONNX layout [M, C/group, kH, kW], Int8: int8 codes; Fp8:
    // float32 holding E4M3 values (the codes decoded, unscaled).
    static Result<std::unique_ptr<QuantConv>> create(const Node& node, const Shape& x,
                                                     const Shape& y, const Tensor& weights,
                                                     QuantConvValues values);
    ~QuantConv();
    QuantConv(const QuantConv&) = delete;
    QuantConv& operator=(const QuantConv&) = delete;

    // x: the input values stored NHWC ([H, W, C]; int8 codes, or bfloat16 bits for Fp8);
    // acc: the output sums stored NHWC ([OH, OW, M]), float32.
    Status run(const void* x, float* acc);

    const std::string& impl() const;  // oneDNN's implementation name

    struct Impl;

private:
    explicit QuantConv(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit
