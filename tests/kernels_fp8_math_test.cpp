// The vectorized FP8 E4M3FN loops of kernels/cpu/fp8_math.h against core/half.h's scalar
// conversions (themselves checked against the readable float_to_fp8 in half_fast_test.cpp):
// every code, and random float bit patterns (NaN, inf, subnormals, ties included).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "runtime/kernels/cpu/fp8_math.h"

namespace lowbit {
namespace {

constexpr DType kF8 = DType::Float8E4M3FN;

TEST(Fp8Math, EveryCodeToBf16AndFloat) {
    std::vector<uint8_t> codes(256 * 3 + 5);
    for (size_t i = 0; i < codes.size(); ++i) codes[i] = static_cast<uint8_t>(i * 37 + 11);
    std::vector<uint16_t> bf(codes.size());
    std::vector<float> f(codes.size());
    cpu::e4m3_to_bf16(codes.data(), bf.data(), static_cast<int64_t>(codes.size()));
    cpu::dequantize_e4m3(codes.data(), f.data(), static_cast<int64_t>(codes.size()), 0.25f);
    for (size_t i = 0; i < codes.size(); ++i) {
        const float v = fp8_to_float(codes[i], kF8);
        const float from_bf = std::bit_cast<float>(static_cast<uint32_t>(bf[i]) << 16);
        if (std::isnan(v)) {
            EXPECT_TRUE(std::isnan(from_bf) && std::isnan(f[i])) << int(codes[i]);
        } else {
            EXPECT_EQ(from_bf, v) << int(codes[i]);
            EXPECT_EQ(f[i], v * 0.25f) << int(codes[i]);
        }
    }
}

TEST(Fp8Math, QuantizeMatchesScalarBitForBit) {
    std::mt19937 rng(5);
    std::vector<float> x;
    for (uint32_t c = 0; c < 256; ++c) {  // grid values and midpoints, times the scale
        const float a = fp8_to_float(static_cast<uint8_t>(c), kF8);
        const float b = fp8_to_float(static_cast<uint8_t>(c + 1), kF8);
        x.push_back(a * 0.75f);
        x.push_back(0.5f * (a + b) * 0.75f);
        x.push_back(std::nextafter(0.5f * (a + b), 0.0f) * 0.75f);
    }
    for (float s : {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 1e-30f, 448.0f * 0.75f, 480.0f * 0.75f,
                    464.0f * 0.75f, -1e30f}) {
        x.push_back(s);
    }
    for (int i = 0; i < 1 << 20; ++i) {  // any bit pattern, and values near the E4M3 range
        x.push_back(i % 2
                        ? std::bit_cast<float>(static_cast<uint32_t>(rng()))
                        : std::ldexp(static_cast<float>(rng() % 4096) - 2048.0f, -int(rng() % 24)));
    }
    for (bool sat : {true, false}) {
        std::vector<uint8_t> y(x.size());
        cpu::quantize_e4m3(x.data(), y.data(), static_cast<int64_t>(x.size()), 0.75f, sat);
        int64_t bad = 0;
        for (size_t i = 0; i < x.size(); ++i) {
            const uint8_t want = float_to_fp8_fast<kF8>(x[i] / 0.75f, sat);
            if (y[i] != want && bad++ < 5) {
                ADD_FAILURE() << "x " << x[i] << " sat " << sat << ": " << int(y[i]) << " want "
                              << int(want);
            }
        }
        EXPECT_EQ(bad, 0);
    }
}

}  // namespace
}  // namespace lowbit
