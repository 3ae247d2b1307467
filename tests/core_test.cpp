// Core numerics: float16/bfloat16/FP8 conversions (round to nearest even, ONNX saturation rules)
// and the memory planner.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/half.h"
#include "runtime/memory_plan.h"

namespace lowbit {
namespace {

TEST(Half, KnownValuesAndTiesToEven) {
    EXPECT_EQ(float_to_half(1.0f), 0x3C00);
    EXPECT_EQ(float_to_half(-2.0f), 0xC000);
    EXPECT_EQ(float_to_half(65504.0f), 0x7BFF);
    EXPECT_EQ(float_to_half(1e6f), 0x7C00);  // overflow -> inf
    // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: ties to even (1.0).
    EXPECT_EQ(float_to_half(1.0f + std::ldexp(1.0f, -11)), 0x3C00);
    EXPECT_EQ(float_to_half(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);
    EXPECT_EQ(half_to_float(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
    for (uint32_t h = 0; h < 0x7C00; ++h) {
        EXPECT_EQ(float_to_half(half_to_float(static_cast<uint16_t>(h))), h);
    }
}

TEST(BFloat16, RoundsToNearestEven) {
    EXPECT_EQ(float_to_bfloat16(1.0f), 0x3F80);
    EXPECT_EQ(bfloat16_to_float(0x3F80), 1.0f);
    // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even.
    EXPECT_EQ(float_to_bfloat16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
    EXPECT_EQ(float_to_bfloat16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
    EXPECT_TRUE(std::isnan(bfloat16_to_float(float_to_bfloat16(NAN))));
}

TEST(Fp8, E4M3FNEveryCodeRoundTripsAndLimits) {
    const DType t = DType::Float8E4M3FN;
    for (int c = 0; c < 256; ++c) {
        float v = fp8_to_float(static_cast<uint8_t>(c), t);
        if ((c & 0x7F) == 0x7F) {
            EXPECT_TRUE(std::isnan(v)) << c;
            continue;
        }
        EXPECT_EQ(float_to_fp8(v, t), c) << "code " << c << " value " << v;
    }
    EXPECT_EQ(fp8_to_float(0x7E, t), 448.0f);
    EXPECT_EQ(fp8_to_float(0x01, t), std::ldexp(1.0f, -9));  // smallest subnormal
    EXPECT_EQ(float_to_fp8(1000.0f, t, true), 0x7E);          // saturate to 448
    EXPECT_EQ(float_to_fp8(-1000.0f, t, true), 0xFE);
    EXPECT_EQ(float_to_fp8(INFINITY, t, true), 0x7E);
    EXPECT_EQ(float_to_fp8(1000.0f, t, false) & 0x7F, 0x7F);  // NaN without saturation
    // 17 lies halfway between 16 (0x58) and 18 (0x59): ties to even -> 16.
    EXPECT_EQ(float_to_fp8(17.0f, t), 0x58);
    EXPECT_EQ(float_to_fp8(19.0f, t), 0x5A);  // halfway 18/20 -> 20 (even mantissa)
    EXPECT_EQ(float_to_fp8(-0.0f, t), 0x80);
}

TEST(Fp8, OtherFormats) {
    EXPECT_EQ(fp8_max(DType::Float8E4M3FNUZ), 240.0f);
    EXPECT_EQ(fp8_max(DType::Float8E5M2), 57344.0f);
    EXPECT_TRUE(std::isinf(fp8_to_float(0x7C, DType::Float8E5M2)));
    EXPECT_EQ(float_to_fp8(1e6f, DType::Float8E5M2, true), 0x7B);
    EXPECT_EQ(float_to_fp8(1e6f, DType::Float8E5M2, false), 0x7C);
    EXPECT_EQ(float_to_fp8(-0.0f, DType::Float8E4M3FNUZ), 0x00);  // no negative zero
    EXPECT_TRUE(std::isnan(fp8_to_float(0x80, DType::Float8E5M2FNUZ)));
    for (DType t : {DType::Float8E4M3FNUZ, DType::Float8E5M2, DType::Float8E5M2FNUZ}) {
        for (int c = 0; c < 256; ++c) {
            float v = fp8_to_float(static_cast<uint8_t>(c), t);
            if (std::isnan(v) || std::isinf(v)) continue;
            EXPECT_EQ(float_to_fp8(v, t), c) << dtype_name(t) << " code " << c;
        }
    }
}

TEST(MemoryPlan, OverlappingLifetimesNeverShareBytes) {
    std::vector<MemoryRequest> reqs = {
        {1000, 0, 2}, {500, 1, 3}, {2000, 3, 5}, {100, 2, 2}, {1000, 4, 6}, {64, -1, 6}};
    size_t total = 0;
    auto slots = plan_memory(reqs, &total);
    for (size_t i = 0; i < reqs.size(); ++i) {
        EXPECT_EQ(slots[i].offset % 64, 0u);
        EXPECT_LE(slots[i].offset + reqs[i].bytes, total);
        for (size_t j = i + 1; j < reqs.size(); ++j) {
            bool live_together = reqs[i].first_step <= reqs[j].last_step &&
                                 reqs[j].first_step <= reqs[i].last_step;
            bool disjoint = slots[i].offset + reqs[i].bytes <= slots[j].offset ||
                            slots[j].offset + reqs[j].bytes <= slots[i].offset;
            if (live_together) EXPECT_TRUE(disjoint) << i << " vs " << j;
        }
    }
    EXPECT_LT(total, 1000u + 500 + 2000 + 100 + 1000 + 64 + 6 * 64);
}

}  // namespace
}  // namespace lowbit
