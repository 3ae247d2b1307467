// Conversions between float and the 16- and 8-bit float formats ONNX stores.
// All float -> narrow conversions round to nearest, ties to even (IEEE 754 default, as ONNX
// Cast/QuantizeLinear and ONNX Runtime do). FP8 rules follow the ONNX Cast-19 table:
//   saturate=true : |x| beyond the largest finite value -> +-max; +-inf -> +-max for the
//                   FN/E5M2 types and NaN for the FNUZ types; NaN -> NaN.
//   saturate=false: out of range -> NaN (E4M3FN, FNUZ types) or +-inf (E5M2).
#pragma once

#include <array>
#include <bit>
#include <cstdint>

#include "core/dtype.h"

namespace lowbit {

// Inline so that conversion loops vectorize (F16C / AVX-512 vcvtph2ps, vcvtps2ph). GCC's
// float <-> _Float16 conversions are IEEE: exact widening, round-to-nearest-even narrowing,
// subnormals included.
inline float half_to_float(uint16_t h) {
    return static_cast<float>(std::bit_cast<_Float16>(h));
}
inline uint16_t float_to_half(float f) {
    return std::bit_cast<uint16_t>(static_cast<_Float16>(f));
}
float bfloat16_to_float(uint16_t b);
uint16_t float_to_bfloat16(float f);

// `t` must be one of the four FP8 types.
float fp8_to_float(uint8_t v, DType t);
uint8_t float_to_fp8(float f, DType t, bool saturate = true);
// Largest finite value of an FP8 type (448 for E4M3FN, 240 for E4M3FNUZ, 57344 for E5M2*).
float fp8_max(DType t);

// ---------------------------------------------------------------------------------------------
// Fast FP8 conversions for kernels. They return exactly what fp8_to_float / float_to_fp8 return
// for every input (tests/half_fast_test.cpp checks every code, every rounding midpoint and its
// neighbours, the saturation boundary, inf/NaN and millions of random floats), but are inline,
// branch-free and vectorizable, where the readable versions above cost ~100 ns per element.

namespace fp8_detail {

struct Format {
    int man_bits;
    int bias;
    bool uz;            // FNUZ: 0x80 is the only NaN, no negative zero, no infinity
    bool has_inf;       // E5M2
    uint32_t max_code;  // code of the largest finite value
};

template <DType T>
constexpr Format format() {
    static_assert(T == DType::Float8E4M3FN || T == DType::Float8E4M3FNUZ ||
                  T == DType::Float8E5M2 || T == DType::Float8E5M2FNUZ);
    if constexpr (T == DType::Float8E4M3FN) return {3, 7, false, false, 0x7E};
    if constexpr (T == DType::Float8E4M3FNUZ) return {3, 8, true, false, 0x7F};
    if constexpr (T == DType::Float8E5M2) return {2, 15, false, true, 0x7B};
    return {2, 16, true, false, 0x7F};
}

constexpr float float_from_bits(uint32_t u) {
    return std::bit_cast<float>(u);
}

// Value of every code, built from its bit fields (constexpr, so no start-up cost).
template <DType T>
constexpr std::array<float, 256> make_table() {
    constexpr Format f = format<T>();
    constexpr int exp_bits = 7 - f.man_bits;
    // The value of mantissa unit 1 in a subnormal: 2^(1 - bias - man_bits).
    constexpr float sub_unit = float_from_bits(uint32_t(127 + 1 - f.bias - f.man_bits) << 23);
    std::array<float, 256> t{};
    for (uint32_t c = 0; c < 256; ++c) {
        const uint32_t sign = (c & 0x80u) << 24;
        const uint32_t e = (c >> f.man_bits) & ((1u << exp_bits) - 1);
        const uint32_t m = c & ((1u << f.man_bits) - 1);
        uint32_t bits;
        if (f.uz ? c == 0x80 : (!f.has_inf && (c & 0x7F) == 0x7F)) {
            bits = (f.uz ? 0u : sign) | 0x7FC00000u;  // NaN
        } else if (f.has_inf && e == (1u << exp_bits) - 1) {
            bits = sign | (m == 0 ? 0x7F800000u : 0x7FC00000u);
        } else if (e == 0) {
            bits = sign | std::bit_cast<uint32_t>(static_cast<float>(m) * sub_unit);
        } else {
            bits = sign | ((e - f.bias + 127) << 23) | (m << (23 - f.man_bits));
        }
        t[c] = float_from_bits(bits);
    }
    return t;
}

}  // namespace fp8_detail

// fp8_table<T>[code] == fp8_to_float(code, T) (NaNs included, with their sign).
template <DType T>
inline constexpr std::array<float, 256> fp8_table = fp8_detail::make_table<T>();

// float_to_fp8(x, T, saturate), bit for bit.
template <DType T>
inline uint8_t float_to_fp8_fast(float x, bool saturate) {
    constexpr fp8_detail::Format f = fp8_detail::format<T>();
    constexpr int kShift = 23 - f.man_bits;  // float mantissa bits dropped
    // Float exponent bias minus FP8 exponent bias, in FP8 code units.
    constexpr uint32_t kRebias = uint32_t(127 - f.bias) << f.man_bits;
    constexpr uint32_t kMinNormal = uint32_t(127 + 1 - f.bias) << 23;  // bits of 2^(1 - bias)
    // Adding 2^(23 + 1 - bias - man_bits) to a value below the smallest normal rounds it (RNE,
    // the default mode) to a multiple of the subnormal quantum; the mantissa bits of the sum
    // then hold the subnormal code (2^man_bits when it rounds up to the smallest normal).
    constexpr float kMagic =
        fp8_detail::float_from_bits(uint32_t(127 + 24 - f.bias - f.man_bits) << 23);
    constexpr uint32_t kNaN = f.uz ? 0x80u : 0x7Fu;

    const uint32_t u = std::bit_cast<uint32_t>(x);
    const uint32_t sign = (u >> 24) & 0x80u;
    const uint32_t a = u & 0x7FFFFFFFu;
    // Normal: drop kShift mantissa bits, round to nearest even; a carry moves into the exponent.
    const uint32_t rounded = (a + ((1u << (kShift - 1)) - 1u) + ((a >> kShift) & 1u)) >> kShift;
    const uint32_t sub =
        std::bit_cast<uint32_t>(std::bit_cast<float>(a) + kMagic) - std::bit_cast<uint32_t>(kMagic);
    const uint32_t code = a < kMinNormal ? sub : rounded - kRebias;

    uint32_t out = sign | code;
    if (code > f.max_code) {  // rounds past the largest finite value (inf and NaN too)
        out = saturate ? (sign | f.max_code) : f.has_inf ? (sign | 0x7Cu) : kNaN;
    }
    if (a == 0x7F800000u) {
        out = f.uz        ? 0x80u
              : saturate  ? (sign | f.max_code)
              : f.has_inf ? (sign | 0x7Cu)
                          : (sign | 0x7Fu);
    }
    if (a > 0x7F800000u) out = kNaN;
    if (f.uz && code == 0) out = 0;
    return static_cast<uint8_t>(out);
}

}  // namespace lowbit
