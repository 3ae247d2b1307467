// Quantization numerics shared by every layer that reasons about a quantized grid: the target
// grids (QuantMode) and rounding a value onto the INT8 or FP8 E4M3FN grid. Calibration (the `mse`
// method's error model), the Q/DQ rewrite and sensitivity's fake quantization all use these, so
// they live in core/ rather than in any one of them (research/modelopt.md §3.7, §4).
#pragma once

#include <bit>
#include <cstdint>

#include "core/dtype.h"

namespace lowbit {

enum class QuantMode { Int8, Fp8 };

// Element type of the quantized tensor for a mode (activations; --zero-point may pick uint8).
inline DType quant_dtype(QuantMode m) {
    return m == QuantMode::Int8 ? DType::Int8 : DType::Float8E4M3FN;
}

// Largest representable magnitude the scale maps amax onto: 127 (INT8) or 448 (E4M3FN).
inline double quant_max(QuantMode m) {
    return m == QuantMode::Int8 ? 127.0 : 448.0;
}

// v clamped to [-128, 127] and rounded half to even, as a float: an INT8 code. Clamping before
// rounding is the same as after for integer bounds; adding and subtracting 1.5 * 2^23 rounds
// exactly for |v| < 2^22 in the default rounding mode, like nearbyint, and vectorizes.
inline float round_int8_value(float v) {
    constexpr float kMagic = 12582912.0f;  // 1.5 * 2^23
    v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
    return (v + kMagic) - kMagic;
}

// `v` rounded to the nearest FP8 E4M3FN value, ties to even, saturating at +-448 (ONNX Cast-19
// with saturate=true; +-inf -> +-448), as a float: for every non-NaN v this equals
// fp8_to_float(float_to_fp8(v, Float8E4M3FN, true), Float8E4M3FN) (core/half.h), and a NaN
// stays a NaN. Branch-free so that loops over it vectorize:
//  - normals (|v| >= 2^-6): round the float's 20 dropped mantissa bits half to even on its bits
//    (a carry moves into the exponent, which is what rounding up to the next binade means);
//  - subnormals: adding 2^14, whose float spacing is 2^-9 (the E4M3 subnormal quantum), rounds
//    |v| to a multiple of 2^-9 in the default round-to-nearest-even mode;
//  - the sign is taken off first and put back last, so -0 and tiny negatives give -0.
inline float round_to_e4m3(float v) {
    constexpr float kSubMagic = 16384.0f;    // 2^14
    constexpr float kMinNormal = 0.015625f;  // 2^-6, the smallest E4M3 normal
    constexpr float kMax = 448.0f;
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    const uint32_t sign = bits & 0x80000000u;
    float a = std::bit_cast<float>(bits & 0x7FFFFFFFu);
    a = a > kMax ? kMax : a;  // saturation; a NaN compares false and stays NaN
    uint32_t ab = std::bit_cast<uint32_t>(a);
    ab = (ab + 0x7FFFFu + ((ab >> 20) & 1u)) & 0xFFF00000u;
    const float normal = std::bit_cast<float>(ab);  // <= 448 since 448 is on the grid
    const float sub = (a + kSubMagic) - kSubMagic;  // NaN takes this path too (NaN >= x is false)
    const float r = a >= kMinNormal ? normal : sub;
    return std::bit_cast<float>(std::bit_cast<uint32_t>(r) | sign);
}

}  // namespace lowbit
