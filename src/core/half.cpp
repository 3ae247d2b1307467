#include "core/half.h"

#include <bit>
#include <cmath>
#include <limits>

namespace lowbit {

float bfloat16_to_float(uint16_t b) {
    return std::bit_cast<float>(static_cast<uint32_t>(b) << 16);
}

uint16_t float_to_bfloat16(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0) {
        return static_cast<uint16_t>((u >> 16) | 0x0040u);  // quiet NaN, keep sign
    }
    uint32_t rounding = 0x7FFFu + ((u >> 16) & 1u);
    return static_cast<uint16_t>((u + rounding) >> 16);
}

namespace {

struct Fp8Format {
    int exp_bits;
    int man_bits;
    int bias;
    bool uz;       // FNUZ: no negative zero, 0x80 is NaN, no infinity
    bool has_inf;  // E5M2 only
    float max;
};

Fp8Format fp8_format(DType t) {
    switch (t) {
        case DType::Float8E4M3FN: return {4, 3, 7, false, false, 448.0f};
        case DType::Float8E4M3FNUZ: return {4, 3, 8, true, false, 240.0f};
        case DType::Float8E5M2: return {5, 2, 15, false, true, 57344.0f};
        case DType::Float8E5M2FNUZ: return {5, 2, 16, true, false, 57344.0f};
        default: return {4, 3, 7, false, false, 448.0f};
    }
}

uint8_t fp8_nan(const Fp8Format& f) {
    return f.uz ? 0x80 : (f.exp_bits == 4 ? 0x7F : 0x7F);
}

}  // namespace

float fp8_max(DType t) {
    return fp8_format(t).max;
}

float fp8_to_float(uint8_t v, DType t) {
    const Fp8Format f = fp8_format(t);
    if (f.uz && v == 0x80) return std::numeric_limits<float>::quiet_NaN();
    const bool neg = (v & 0x80) != 0;
    const int exp_mask = (1 << f.exp_bits) - 1;
    const int man_mask = (1 << f.man_bits) - 1;
    const int e = (v >> f.man_bits) & exp_mask;
    const int m = v & man_mask;
    float r;
    if (!f.uz && f.exp_bits == 4 && e == exp_mask && m == man_mask) {
        r = std::numeric_limits<float>::quiet_NaN();  // E4M3FN: S.1111.111 is NaN
    } else if (f.has_inf && e == exp_mask) {
        r = m == 0 ? std::numeric_limits<float>::infinity()
                   : std::numeric_limits<float>::quiet_NaN();
    } else if (e == 0) {
        r = std::ldexp(static_cast<float>(m), 1 - f.bias - f.man_bits);
    } else {
        r = std::ldexp(static_cast<float>(m + (1 << f.man_bits)), e - f.bias - f.man_bits);
    }
    return neg ? -r : r;
}

uint8_t float_to_fp8(float x, DType t, bool saturate) {
    const Fp8Format f = fp8_format(t);
    const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
    if (std::isnan(x)) return fp8_nan(f);
    if (std::isinf(x)) {
        if (f.uz) return 0x80;
        if (saturate)
            x = std::copysign(f.max, x);
        else if (f.has_inf)
            return sign | 0x7C;
        else
            return sign | 0x7F;
    }
    float a = std::fabs(x);
    // Quantum of the binade holding a (subnormals share the smallest normal binade's quantum).
    const int min_exp = 1 - f.bias;  // exponent of the smallest normal
    int e = a > 0 ? std::ilogb(a) : min_exp;
    if (e < min_exp) e = min_exp;
    const float quantum = std::ldexp(1.0f, e - f.man_bits);
    float q = std::nearbyint(a / quantum) * quantum;  // exact scaling; default mode is RNE
    if (q > f.max) {
        if (saturate)
            q = f.max;
        else if (f.has_inf)
            return sign | 0x7C;
        else
            return fp8_nan(f);
    }
    if (q == 0) return f.uz ? 0x00 : sign;
    int qe = std::ilogb(q);
    uint8_t bits;
    if (qe < min_exp) {
        bits = static_cast<uint8_t>(std::lround(std::ldexp(q, -(min_exp - f.man_bits))));
    } else {
        int mant =
            static_cast<int>(std::lround(std::ldexp(q, f.man_bits - qe))) - (1 << f.man_bits);
        bits = static_cast<uint8_t>(((qe + f.bias) << f.man_bits) | mant);
    }
    return sign | bits;
}

}  // namespace lowbit
