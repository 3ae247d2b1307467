// The fast FP8 conversions of core/half.h (fp8_table, float_to_fp8_fast) against the readable
// reference (fp8_to_float, float_to_fp8): bit-identical on every code, every rounding midpoint
// and its float neighbours, zeros, subnormals, the saturation boundary, inf/NaN and random floats,
// for all four FP8 types and both saturate modes.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "core/half.h"

namespace lowbit {
namespace {

template <DType T>
void expect_same(float x, bool saturate) {
    const uint8_t want = float_to_fp8(x, T, saturate);
    const uint8_t got = float_to_fp8_fast<T>(x, saturate);
    ASSERT_EQ(got, want) << dtype_name(T) << " saturate=" << saturate << " x=" << x << " (bits 0x"
                         << std::hex << std::bit_cast<uint32_t>(x) << ")";
}

// Floats that matter for FP8 rounding: every code's value, the midpoints between adjacent codes
// (ties) and one float step either side of every value and midpoint, both signs.
template <DType T>
std::vector<float> edge_floats() {
    std::vector<float> finite;
    for (int c = 0; c < 128; ++c) {
        const float v = fp8_to_float(static_cast<uint8_t>(c), T);
        if (std::isfinite(v)) finite.push_back(v);
    }
    std::sort(finite.begin(), finite.end());
    const float top = finite.back();
    // Beyond the largest value: the next code's value would be top + its quantum; the midpoint
    // (the tie that decides saturation) and well past it.
    const float quantum = top - finite[finite.size() - 2];
    std::vector<float> points = finite;
    for (size_t i = 0; i + 1 < finite.size(); ++i)
        points.push_back((finite[i] + finite[i + 1]) / 2);
    points.push_back(top + quantum / 2);
    points.push_back(top + quantum);
    points.push_back(top * 2);
    points.push_back(1e30f);
    points.push_back(std::numeric_limits<float>::max());
    points.push_back(std::numeric_limits<float>::min());
    points.push_back(std::numeric_limits<float>::denorm_min());
    points.push_back(finite[1] / 4);  // below half the smallest subnormal
    std::vector<float> out;
    for (float p : points) {
        for (float v : {p, std::nextafter(p, 0.0f), std::nextafter(p, INFINITY)}) {
            out.push_back(v);
            out.push_back(-v);
        }
    }
    for (float v :
         {0.0f, -0.0f, INFINITY, -INFINITY, std::numeric_limits<float>::quiet_NaN(),
          -std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::signaling_NaN(),
          std::bit_cast<float>(0xFF800001u)}) {
        out.push_back(v);
    }
    return out;
}

template <DType T>
void check_type() {
    for (int c = 0; c < 256; ++c) {
        const float want = fp8_to_float(static_cast<uint8_t>(c), T);
        const float got = fp8_table<T>[c];
        if (std::isnan(want)) {
            EXPECT_TRUE(std::isnan(got)) << dtype_name(T) << " code " << c;
        } else {
            EXPECT_EQ(std::bit_cast<uint32_t>(got), std::bit_cast<uint32_t>(want))
                << dtype_name(T) << " code " << c;
        }
    }
    const std::vector<float> edges = edge_floats<T>();
    for (bool saturate : {true, false}) {
        for (float x : edges) expect_same<T>(x, saturate);
    }
    // Random floats: uniformly random bit patterns (every exponent, NaNs included) and values
    // spread over the format's range, where most of the real inputs lie.
    std::mt19937 rng(1234);
    std::uniform_int_distribution<uint32_t> bits;
    const float top = fp8_max(T);
    std::uniform_real_distribution<float> around(-2 * top, 2 * top);
    std::uniform_real_distribution<float> log_mag(-40.0f, std::log2(top) + 2);
    for (int i = 0; i < 1'000'000; ++i) {
        const bool saturate = (i & 1) != 0;
        expect_same<T>(std::bit_cast<float>(bits(rng)), saturate);
        expect_same<T>(around(rng), saturate);
        const float m = std::exp2(log_mag(rng));
        expect_same<T>((i & 2) != 0 ? m : -m, saturate);
    }
}

TEST(Fp8Fast, E4M3FNMatchesReference) {
    check_type<DType::Float8E4M3FN>();
}
TEST(Fp8Fast, E4M3FNUZMatchesReference) {
    check_type<DType::Float8E4M3FNUZ>();
}
TEST(Fp8Fast, E5M2MatchesReference) {
    check_type<DType::Float8E5M2>();
}
TEST(Fp8Fast, E5M2FNUZMatchesReference) {
    check_type<DType::Float8E5M2FNUZ>();
}

TEST(Fp8Fast, E4M3FNSaturationBoundary) {
    constexpr DType t = DType::Float8E4M3FN;
    EXPECT_EQ(float_to_fp8_fast<t>(448.0f, false), 0x7E);
    EXPECT_EQ(float_to_fp8_fast<t>(464.0f, true), 0x7E);  // tie 448/480: even mantissa (448)
    EXPECT_EQ(float_to_fp8_fast<t>(464.0f, false), 0x7E);
    EXPECT_EQ(float_to_fp8_fast<t>(std::nextafter(464.0f, INFINITY), true), 0x7E);
    EXPECT_EQ(float_to_fp8_fast<t>(std::nextafter(464.0f, INFINITY), false), 0x7F);  // NaN
    EXPECT_EQ(float_to_fp8_fast<t>(-480.0f, true), 0xFE);
    EXPECT_EQ(float_to_fp8_fast<t>(std::ldexp(1.0f, -10), true), 0x00);  // tie 0 / 2^-9: even
    EXPECT_EQ(float_to_fp8_fast<t>(std::ldexp(3.0f, -10), true), 0x02);  // tie 2^-9 / 2^-8
}

}  // namespace
}  // namespace lowbit
