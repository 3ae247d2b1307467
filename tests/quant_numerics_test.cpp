// Quantization arithmetic: scales, round-half-even, saturation, E4M3 rounding, weight quantization.
#include <gtest/gtest.h>

#include <cfloat>
#include <cmath>
#include <random>

#include "core/half.h"
#include "quant/numerics.h"
#include "quant/qdq_rewrite.h"

namespace lowbit::quant {
namespace {

TEST(QuantNumerics, SymmetricScales) {
    EXPECT_DOUBLE_EQ(symmetric_scale(12.7, QuantMode::Int8), 12.7 / 127.0);
    EXPECT_DOUBLE_EQ(symmetric_scale(448.0, QuantMode::Fp8), 1.0);
    EXPECT_DOUBLE_EQ(symmetric_scale(-3.0, QuantMode::Int8), 3.0 / 127.0);
    EXPECT_DOUBLE_EQ(symmetric_scale(0.0, QuantMode::Int8), 1.0);  // below FLT_MIN
    EXPECT_DOUBLE_EQ(symmetric_scale(1e-40, QuantMode::Int8), 1.0);
    EXPECT_EQ(stored_scale(0.1, DType::Float32), 0.1f);
    EXPECT_EQ(stored_scale(0.1, DType::Float16), half_to_float(float_to_half(0.1f)));
    EXPECT_GT(stored_scale(1e-12, DType::Float16), 0.0f);  // never 0 in float16
}

TEST(QuantNumerics, AsymmetricParamsForceZeroIntoTheRange) {
    auto u = asymmetric_params(-0.3, 6.0, DType::UInt8);
    EXPECT_NEAR(u.scale, 6.3 / 255.0, 1e-12);
    EXPECT_EQ(u.zero_point, static_cast<int32_t>(std::nearbyint(0.3 / (6.3 / 255.0))));
    auto pos = asymmetric_params(1.0, 2.0, DType::UInt8);  // 0 forced in: [0, 2]
    EXPECT_NEAR(pos.scale, 2.0 / 255.0, 1e-12);
    EXPECT_EQ(pos.zero_point, 0);
    auto s = asymmetric_params(-1.0, 1.0, DType::Int8);
    EXPECT_EQ(s.zero_point, 0);  // round(-128 + 127.5) = round(-0.5) = -0 (half to even)
}

TEST(QuantNumerics, QuantizeRoundsHalfToEvenAndSaturates) {
    EXPECT_EQ(quantize_int8(2.5f, 1.0f), 2);
    EXPECT_EQ(quantize_int8(3.5f, 1.0f), 4);
    EXPECT_EQ(quantize_int8(-2.5f, 1.0f), -2);
    EXPECT_EQ(quantize_int8(1000.0f, 1.0f), 127);
    EXPECT_EQ(quantize_int8(-1000.0f, 1.0f), -128);
    EXPECT_EQ(quantize_int(300.0f, 1.0f, 10, 0, 255), 255);
    EXPECT_EQ(quantize_int(-3.0f, 1.0f, 10, 0, 255), 7);
}

TEST(QuantNumerics, E4m3RoundingMatchesTheFp8Cast) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> u(-8.0f, 8.0f);
    for (int i = 0; i < 200000; ++i) {
        // Spread over many binades, including subnormals and saturation.
        const float x = std::ldexp(u(rng), static_cast<int>(rng() % 24) - 14);
        const float ref = fp8_to_float(float_to_fp8(x, DType::Float8E4M3FN), DType::Float8E4M3FN);
        ASSERT_EQ(round_to_e4m3(x), ref) << x;
    }
    EXPECT_EQ(round_to_e4m3(1e9f), 448.0f);
    EXPECT_EQ(round_to_e4m3(-500.0f), -448.0f);
}

TEST(QuantNumerics, PerChannelWeightQuantization) {
    // [2, 1, 1, 3]: channel 0 amax 127/32 (scale exactly 1/32), channel 1 all zero.
    Tensor w = Tensor::from_vector<float>(DType::Float32, {2, 1, 1, 3},
                                          {3.96875f, -1.984375f, 0.015625f, 0.0f, 0.0f, 0.0f});
    std::vector<float> scales;
    Tensor q = quantize_weight(w, 0, QuantMode::Int8, DType::Float32, &scales);
    ASSERT_EQ(scales.size(), 2u);
    EXPECT_EQ(scales[0], 0.03125f);
    EXPECT_EQ(scales[1], 1.0f);  // all-zero channel
    EXPECT_EQ(q.data<int8_t>()[0], 127);
    EXPECT_EQ(q.data<int8_t>()[1], -64);  // -63.5 rounds half to even
    EXPECT_EQ(q.data<int8_t>()[2], 0);    // 0.5 -> 0
    Tensor q8 = quantize_weight(w, 0, QuantMode::Fp8, DType::Float32, &scales);
    EXPECT_EQ(scales[0], static_cast<float>(3.96875 / 448.0));
    EXPECT_EQ(fp8_to_float(q8.data<uint8_t>()[0], DType::Float8E4M3FN), 448.0f);
    // Per-tensor: one scalar scale.
    quantize_weight(w, -1, QuantMode::Int8, DType::Float32, &scales);
    EXPECT_EQ(scales.size(), 1u);
}

}  // namespace
}  // namespace lowbit::quant
