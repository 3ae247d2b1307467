// core/numerics.h: QuantMode's grid and round_to_e4m3, the one E4M3FN value rounding that
// replaced three copies (quant/numerics.cpp's ilogb/ldexp form, calib/calibrators.cpp's
// non-negative bit form, and the readable FP8 cast it must agree with). The two retired forms are
// kept here verbatim as references; the new function must give the same bits for every input of a
// large deterministic sample, every E4M3 value, every tie between adjacent values and one float
// step either side of each, zeros, the saturation boundary and inf/NaN.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/half.h"
#include "core/numerics.h"

namespace lowbit {
namespace {

// quant::round_to_e4m3 before the move (quant/numerics.cpp).
float old_quant_round_to_e4m3(float x) {
    const float a = std::fabs(x);
    if (!(a == a)) return x;
    if (a >= 448.0f) return std::copysign(448.0f, x);
    int e = a > 0 ? std::ilogb(a) : -6;
    if (e < -6) e = -6;
    const float quantum = std::ldexp(1.0f, e - 3);
    float q = std::nearbyint(a / quantum) * quantum;
    if (q > 448.0f) q = 448.0f;
    return std::copysign(q, x);
}

// calib's e4m3_round_nonneg before the move (calib/calibrators.cpp), for y >= 0.
float old_calib_round_nonneg(float y) {
    if (y >= 448.0f) return 448.0f;
    if (y < 0.015625f) return std::nearbyint(y * 512.0f) * (1.0f / 512.0f);
    uint32_t b = std::bit_cast<uint32_t>(y);
    b += 0x7FFFFu + ((b >> 20) & 1u);
    b &= ~0xFFFFFu;
    const float r = std::bit_cast<float>(b);
    return r > 448.0f ? 448.0f : r;
}

float fp8_cast_value(float x) {
    return fp8_to_float(float_to_fp8(x, DType::Float8E4M3FN, true), DType::Float8E4M3FN);
}

uint32_t bits_of(float x) {
    return std::bit_cast<uint32_t>(x);
}

// Checks one input against every reference that defines it; returns false on the first mismatch
// (so a broken build reports one value, not millions).
bool same_as_references(float x) {
    const float got = round_to_e4m3(x);
    if (std::isnan(x)) {
        EXPECT_TRUE(std::isnan(got)) << "x bits 0x" << std::hex << bits_of(x);
        return std::isnan(got);
    }
    const uint32_t g = bits_of(got);
    bool ok = true;
    if (g != bits_of(old_quant_round_to_e4m3(x))) {
        ADD_FAILURE() << "quant form: x=" << x << " got " << got << " want "
                      << old_quant_round_to_e4m3(x);
        ok = false;
    }
    if (g != bits_of(fp8_cast_value(x))) {
        ADD_FAILURE() << "fp8 cast: x=" << x << " got " << got << " want " << fp8_cast_value(x);
        ok = false;
    }
    if (!std::signbit(x) && g != bits_of(old_calib_round_nonneg(x))) {
        ADD_FAILURE() << "calib form: x=" << x << " got " << got << " want "
                      << old_calib_round_nonneg(x);
        ok = false;
    }
    return ok;
}

TEST(CoreNumerics, QuantModeGrid) {
    EXPECT_EQ(quant_dtype(QuantMode::Int8), DType::Int8);
    EXPECT_EQ(quant_dtype(QuantMode::Fp8), DType::Float8E4M3FN);
    EXPECT_EQ(quant_max(QuantMode::Int8), 127.0);
    EXPECT_EQ(quant_max(QuantMode::Fp8), 448.0);
}

TEST(CoreNumerics, E4m3RoundingOnValuesTiesAndBoundaries) {
    std::vector<float> values;
    for (int c = 0; c < 127; ++c) {  // 0x7F is NaN
        values.push_back(fp8_to_float(static_cast<uint8_t>(c), DType::Float8E4M3FN));
    }
    std::vector<float> points = values;
    for (size_t i = 0; i + 1 < values.size(); ++i) points.push_back((values[i] + values[i + 1]) / 2);
    // 480 is the tie past 448 that decides saturation; the rest are far past it or tiny.
    for (float p : {480.0f, 464.0f, 512.0f, 1e30f, std::numeric_limits<float>::max(),
                    std::numeric_limits<float>::min(), std::numeric_limits<float>::denorm_min(),
                    0.0009765625f /* 2^-10, half the smallest subnormal */}) {
        points.push_back(p);
    }
    int checked = 0;
    for (float p : points) {
        for (float v : {p, std::nextafter(p, 0.0f), std::nextafter(p, INFINITY)}) {
            ASSERT_TRUE(same_as_references(v));
            ASSERT_TRUE(same_as_references(-v));
            checked += 2;
        }
    }
    for (float v : {0.0f, -0.0f, INFINITY, -INFINITY, std::numeric_limits<float>::quiet_NaN(),
                    -std::numeric_limits<float>::quiet_NaN(),
                    std::numeric_limits<float>::signaling_NaN(), std::bit_cast<float>(0x7FFFFFFFu),
                    std::bit_cast<float>(0xFFFFFFFFu)}) {
        ASSERT_TRUE(same_as_references(v));
    }
    EXPECT_GT(checked, 1500);
}

TEST(CoreNumerics, E4m3RoundingOnALargeDeterministicSample) {
    // Every 4099th float bit pattern (about a million, all exponents and both signs, NaNs
    // included), then random values spread log-uniformly over the range inputs actually take.
    for (uint64_t u = 0; u <= 0xFFFFFFFFull; u += 4099) {
        ASSERT_TRUE(same_as_references(std::bit_cast<float>(static_cast<uint32_t>(u))));
    }
    std::mt19937 rng(20261204);
    std::uniform_real_distribution<float> log_mag(-24.0f, 11.0f);
    std::uniform_int_distribution<uint32_t> low_bits(0, 0xFFFFF);
    for (int i = 0; i < 2'000'000; ++i) {
        const float m = std::exp2(log_mag(rng));
        ASSERT_TRUE(same_as_references((i & 1) != 0 ? m : -m));
        // Same binade, random dropped bits: exercises ties-to-even on every kept mantissa.
        const uint32_t b = (bits_of(m) & ~0xFFFFFu) | low_bits(rng);
        ASSERT_TRUE(same_as_references(std::bit_cast<float>(b)));
    }
}

}  // namespace
}  // namespace lowbit
