// Sensitivity's fake quantization: QuantizeLinear -> DequantizeLinear of float32 values with
// exactly the numerics `quantize` writes, in branch-free forms that vectorize (the sweep
// fake-quantizes millions of values per image). A new format (e.g. INT4) adds its rounding here
// and a case to fake_quantize_into / fake_quantize_weight.
//
// The rounding helpers are sensitivity's own copies of the INT8 and E4M3FN rounding (equal to
// quant/numerics' quantize_int8 / round_to_e4m3 for finite values, tested); the lead folds them
// into core/ with the other E4M3 roundings (issue 11 item 5).
#pragma once

#include <bit>
#include <cstdint>

#include "core/tensor.h"
#include "quant/numerics.h"

namespace lowbit::quant {

// v clamped to [-128, 127] and rounded half to even, as a float: an INT8 code (clamping before
// rounding is the same for integer bounds; the 1.5 * 2^23 trick is exact for |v| < 2^22 in the
// default rounding mode, like nearbyint).
inline float round_int8_value(float v) {
    constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
    v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
    return (v + kMagic) - kMagic;
}

// v rounded to the nearest FP8 E4M3FN value (saturating at 448), as a float.
inline float round_e4m3fn_value(float v) {
    constexpr float kSubMagic = 16384.0f;    // 2^14: float spacing 2^-9 around it
    constexpr float kMinNormal = 0.015625f;  // 2^-6
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    const uint32_t sign = bits & 0x80000000u;
    float a = std::bit_cast<float>(bits & 0x7FFFFFFFu);
    a = a > 448.0f ? 448.0f : a;  // NaN stays NaN
    uint32_t ab = std::bit_cast<uint32_t>(a);
    ab = (ab + 0x7FFFFu + ((ab >> 20) & 1u)) & 0xFFF00000u;
    const float normal = std::bit_cast<float>(ab);
    const float sub = (a + kSubMagic) - kSubMagic;
    const float r = a >= kMinNormal ? normal : sub;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(r) | sign);
}

// QuantizeLinear -> DequantizeLinear of float32 values with one stored scale, bit-identical to
// the executor's kernels (INT8 symmetric, or FP8 E4M3FN saturating; NaN inputs aside).
void fake_quantize_into(const float* x, float* y, int64_t n, float scale, QuantMode mode);
Tensor fake_quantize(const Tensor& x, float scale, QuantMode mode);

// A weight as its QuantizeLinear/DequantizeLinear pair in the quantized model yields it
// (per channel along `axis`, or per tensor when axis < 0).
Tensor fake_quantize_weight(const Tensor& w, int64_t axis, QuantMode mode);

}  // namespace lowbit::quant
