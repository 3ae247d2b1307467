// Force-included (-include) into the fuzz build when clang is older than 15: Debian's clang 14
// has no _Float16 on x86 without AVX512-FP16, which core/half.h uses for its float16
// conversions. This stands in for it with the same IEEE conversions in integer arithmetic
// (round to nearest even, subnormals, inf; NaN payloads kept and quieted), so the readers'
// float16 paths are fuzzed with the results GCC's _Float16 gives.
#pragma once

#include <bit>
#include <cstdint>

namespace lowbit_fuzz {

struct SoftHalf {
    uint16_t bits;

    SoftHalf() = default;
    explicit SoftHalf(float f) : bits(from_float(f)) {}
    explicit operator float() const { return to_float(bits); }

    static float to_float(uint16_t h) {
        const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
        uint32_t exp = (h >> 10) & 0x1Fu;
        uint32_t man = h & 0x3FFu;
        uint32_t out;
        if (exp == 0x1F) {
            out = sign | 0x7F800000u | (man << 13) | (man != 0 ? 0x400000u : 0u);
        } else if (exp != 0) {
            out = sign | ((exp + 112) << 23) | (man << 13);
        } else if (man == 0) {
            out = sign;
        } else {
            exp = 113;
            while ((man & 0x400u) == 0) {
                man <<= 1;
                --exp;
            }
            out = sign | (exp << 23) | ((man & 0x3FFu) << 13);
        }
        return std::bit_cast<float>(out);
    }

    static uint16_t from_float(float f) {
        const uint32_t x = std::bit_cast<uint32_t>(f);
        const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
        const uint32_t ax = x & 0x7FFFFFFFu;
        if (ax > 0x7F800000u) return static_cast<uint16_t>(sign | 0x7E00u | ((ax >> 13) & 0x3FFu));
        if (ax >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00u);
        if (ax < 0x38800000u) {  // half subnormal or zero: |f| * 2^24 rounded to nearest even
            const float scaled = std::bit_cast<float>(ax) * 16777216.0f;  // exact
            const uint32_t i = static_cast<uint32_t>(scaled);
            const float rem = scaled - static_cast<float>(i);
            const uint32_t r = i + ((rem > 0.5f || (rem == 0.5f && (i & 1u))) ? 1u : 0u);
            return static_cast<uint16_t>(sign | r);
        }
        uint32_t h = (((ax >> 23) - 112) << 10) | ((ax & 0x7FFFFFu) >> 13);
        const uint32_t rest = ax & 0x1FFFu;
        if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) ++h;  // may carry into the exponent
        return static_cast<uint16_t>(sign | h);
    }
};

}  // namespace lowbit_fuzz

#define _Float16 ::lowbit_fuzz::SoftHalf
