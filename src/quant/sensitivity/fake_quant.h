// Sensitivity's fake quantization: QuantizeLinear -> DequantizeLinear of float32 values with
// exactly the numerics `quantize` writes, in branch-free forms that vectorize (the sweep
// fake-quantizes millions of values per image). A new format (e.g. INT4) adds its rounding here
// and a case to fake_quantize_into / fake_quantize_weight.
// The roundings themselves are core/numerics.h's round_int8_value and round_to_e4m3.
#pragma once

#include <cstdint>

#include "core/tensor.h"
#include "quant/numerics.h"

namespace lowbit::quant {

// QuantizeLinear -> DequantizeLinear of float32 values with one stored scale, bit-identical to
// the executor's kernels (INT8 symmetric, or FP8 E4M3FN saturating; NaN inputs aside).
void fake_quantize_into(const float* x, float* y, int64_t n, float scale, QuantMode mode);
Tensor fake_quantize(const Tensor& x, float scale, QuantMode mode);

// A weight as its QuantizeLinear/DequantizeLinear pair in the quantized model yields it
// (per channel along `axis`, or per tensor when axis < 0).
Tensor fake_quantize_weight(const Tensor& w, int64_t axis, QuantMode mode);

// An INT4 weight (round to nearest, per channel or in blocks) as its DequantizeLinear yields it.
Tensor fake_quantize_weight_int4(const Tensor& w, int64_t axis, int64_t block_size);

}  // namespace lowbit::quant
