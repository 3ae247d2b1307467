// Edge cases of QuantizeLinear, DequantizeLinear, Cast and CastLike
// (runtime/kernels/ref/quant.cpp): rounding half to even, saturation, division (not
// multiplication by a reciprocal), per-axis parameters, the FP8 grids, Cast's conversion rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "core/half.h"
#include "kernel_test_util.h"

namespace lowbit {
namespace {

using namespace lowbit::test;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

KernelCall quantize(Tensor x, Tensor scale, Tensor zp = {}, std::map<std::string, Attr> attrs = {},
                    int64_t opset = 19) {
    KernelCall c{"QuantizeLinear", {std::move(x), std::move(scale)}, std::move(attrs), opset};
    if (!zp.empty()) c.inputs.push_back(std::move(zp));
    c.constant_inputs = {1, 2};
    return c;
}

KernelCall dequantize(Tensor x, Tensor scale, Tensor zp = {},
                      std::map<std::string, Attr> attrs = {}, int64_t opset = 19) {
    KernelCall c{"DequantizeLinear", {std::move(x), std::move(scale)}, std::move(attrs), opset};
    if (!zp.empty()) c.inputs.push_back(std::move(zp));
    c.constant_inputs = {1, 2};
    return c;
}

TEST(QuantizeLinear, RoundsHalfToEven) {
    Tensor x = f32({9}, {0.5f, 1.5f, 2.5f, -2.5f, 3.5f, -0.5f, -1.5f, 2.4999998f, -3.5f});
    Tensor y = run_one(quantize(x, scalar_f32(1), i8({}, {0})));
    EXPECT_EQ(y.dtype(), DType::Int8);
    EXPECT_EQ(values<int8_t>(y), (std::vector<int8_t>{0, 2, 2, -2, 4, 0, -2, 2, -4}));
    // The tie is on x / scale, before the zero point is added.
    Tensor z = run_one(quantize(f32({3}, {1.25f, 1.75f, -1.25f}), scalar_f32(0.5f), u8({}, {10})));
    EXPECT_EQ(values<uint8_t>(z), (std::vector<uint8_t>{12, 14, 8}));
}

TEST(QuantizeLinear, SaturatesAndHandlesNonFinite) {
    Tensor x = f32({6}, {1000, -1000, kInf, -kInf, kNaN, 126.6f});
    EXPECT_EQ(values<int8_t>(run_one(quantize(x, scalar_f32(1), i8({}, {0})))),
              (std::vector<int8_t>{127, -128, 127, -128, -128, 127}));
    // uint8 with zero point 128: the zero point shifts the saturation window.
    Tensor u = f32({5}, {-200, -128, 0, 127, 200});
    EXPECT_EQ(values<uint8_t>(run_one(quantize(u, scalar_f32(1), u8({}, {128})))),
              (std::vector<uint8_t>{0, 0, 128, 255, 255}));
    // int16 (Quantize-21 type) saturates at its own range.
    Tensor w = run_one(quantize(f32({2}, {1e6f, -1e6f}), scalar_f32(1),
                                Tensor::from_vector<int16_t>(DType::Int16, {}, {0})));
    EXPECT_EQ(values<int16_t>(w), (std::vector<int16_t>{32767, -32768}));
}

TEST(QuantizeLinear, DefaultsToUint8WithoutZeroPoint) {
    Tensor y = run_one(quantize(f32({3}, {-1, 2.5f, 300}), scalar_f32(1)));
    EXPECT_EQ(y.dtype(), DType::UInt8);
    EXPECT_EQ(values<uint8_t>(y), (std::vector<uint8_t>{0, 2, 255}));
    // Quantize-21 output_dtype picks the type when there is no zero point.
    Tensor z = run_one(quantize(f32({1}, {-3}), scalar_f32(1), {},
                                {{"output_dtype", attr_i(static_cast<int>(DType::Int8))}}, 21));
    EXPECT_EQ(z.dtype(), DType::Int8);
    EXPECT_EQ(values<int8_t>(z), std::vector<int8_t>{-3});
    run_error(quantize(f32({1}, {1}), scalar_f32(1), i8({}, {0}),
                       {{"output_dtype", attr_i(static_cast<int>(DType::UInt8))}}, 21));
}

// x / scale in float32, as ONNX Runtime computes it. x * (1 / scale) rounds differently for
// some inputs; find such inputs and check that the kernel follows the division.
TEST(QuantizeLinear, DividesByScaleRatherThanMultiplyingByReciprocal) {
    std::vector<float> xs, scales;
    for (float s : {0.1f, 0.3f, 0.7f, 0.01f, 1.0f / 3.0f, 0.0627451f}) {
        const float inv = 1.0f / s;
        for (int k = -2000; k <= 2000; ++k) {
            const float x = (static_cast<float>(k) + 0.5f) * s;
            if (std::nearbyint(x / s) != std::nearbyint(x * inv)) {
                xs.push_back(x);
                scales.push_back(s);
            }
        }
    }
    ASSERT_GT(xs.size(), 10u) << "no inputs where division and reciprocal disagree";
    for (size_t i = 0; i < xs.size(); ++i) {
        Tensor y = run_one(quantize(f32({1}, {xs[i]}), scalar_f32(scales[i]),
                                    Tensor::from_vector<int16_t>(DType::Int16, {}, {0})));
        ASSERT_EQ(values<int16_t>(y)[0], static_cast<int16_t>(std::nearbyint(xs[i] / scales[i])))
            << xs[i] << " / " << scales[i];
    }
}

TEST(QuantizeLinear, PerAxis) {
    // x [2,3,2], axis 1: channel c uses scale[c], zero_point[c].
    std::vector<float> xv;
    for (int i = 0; i < 12; ++i) xv.push_back(static_cast<float>(i * 7 - 40) * 0.75f);
    Tensor x = f32({2, 3, 2}, xv);
    const std::vector<float> s = {1, 2, 4};
    const std::vector<int8_t> z = {0, 10, -10};
    std::vector<int8_t> want;
    for (int i = 0; i < 12; ++i) {
        const int c = (i / 2) % 3;
        float q = std::nearbyint(xv[i] / s[c]) + z[c];
        want.push_back(static_cast<int8_t>(std::clamp(q, -128.0f, 127.0f)));
    }
    for (int64_t axis : {1, -2}) {
        Tensor y = run_one(quantize(x, f32({3}, s), i8({3}, z), {{"axis", attr_i(axis)}}, 13));
        EXPECT_EQ(values<int8_t>(y), want) << "axis " << axis;
    }
    // Dequantize back with the same parameters.
    Tensor q = i8({2, 3, 2}, want);
    Tensor d = run_one(dequantize(q, f32({3}, s), i8({3}, z), {{"axis", attr_i(1)}}, 13));
    for (int i = 0; i < 12; ++i) {
        const int c = (i / 2) % 3;
        EXPECT_EQ(values<float>(d)[i], static_cast<float>(want[i] - z[c]) * s[c]);
    }
    // Scale length must match the axis; per-axis needs opset 13; 2-D scales are blocked.
    std::string msg = run_error(quantize(x, f32({3}, s), {}, {{"axis", attr_i(0)}}));
    EXPECT_NE(msg.find("axis"), std::string::npos) << msg;
    run_error(quantize(x, f32({3}, s), {}, {}, 10));
    run_error(quantize(x, f32({3}, s), i8({2}, {0, 0})));
    run_error(quantize(x, f32({3}, s), {}, {{"axis", attr_i(3)}}));
    msg = run_error(quantize(x, f32({1, 3}, s)));
    EXPECT_NE(msg.find("blocked"), std::string::npos) << msg;
}

TEST(QuantizeLinear, LargeTensorsMatchTheFormulaOnAnyThreadCount) {
    // [2,64,20,20]: per-tensor and per-axis (axis 1) over more elements than one thread takes.
    const Shape shape{2, 64, 20, 20};
    std::vector<float> xv(static_cast<size_t>(shape_numel(shape)));
    for (size_t i = 0; i < xv.size(); ++i) xv[i] = std::sin(static_cast<float>(i)) * 9.0f;
    std::vector<float> scales(64);
    std::vector<int8_t> zps(64);
    for (int c = 0; c < 64; ++c) {
        scales[c] = 0.01f + 0.003f * static_cast<float>(c);
        zps[c] = static_cast<int8_t>(c - 32);
    }
    Tensor x = f32(shape, xv);
    for (int threads : {1, 3}) {
        KernelCall per_axis = quantize(x, f32({64}, scales), i8({64}, zps));
        per_axis.n_threads = threads;
        KernelCall per_tensor = quantize(x, scalar_f32(0.07f), i8({}, {3}));
        per_tensor.n_threads = threads;
        const std::vector<int8_t> a = values<int8_t>(run_one(per_axis));
        const std::vector<int8_t> t = values<int8_t>(run_one(per_tensor));
        for (size_t i = 0; i < xv.size(); ++i) {
            const size_t c = (i / 400) % 64;
            const float qa = std::clamp(std::nearbyint(xv[i] / scales[c]) + zps[c], -128.f, 127.f);
            const float qt = std::clamp(std::nearbyint(xv[i] / 0.07f) + 3, -128.f, 127.f);
            ASSERT_EQ(a[i], static_cast<int8_t>(qa)) << i;
            ASSERT_EQ(t[i], static_cast<int8_t>(qt)) << i;
        }
    }
}

TEST(QuantizeLinear, RejectsBlockSize) {
    std::string msg = run_error(quantize(f32({4}, {1, 2, 3, 4}), f32({2}, {1, 1}), {},
                                         {{"block_size", attr_i(2)}, {"axis", attr_i(0)}}, 21));
    EXPECT_NE(msg.find("block_size"), std::string::npos) << msg;
    EXPECT_NE(msg.find("QuantizeLinear 'test_QuantizeLinear'"), std::string::npos) << msg;
}

TEST(QuantizeLinear, Float16Input) {
    Tensor y =
        run_one(quantize(f16({4}, {1.25f, -3.75f, 100, 0.25f}), f16({}, {0.5f}), i8({}, {1})));
    EXPECT_EQ(values<int8_t>(y), (std::vector<int8_t>{3, -7, 127, 1}));
    run_error(quantize(i64({1}, {1}), scalar_f32(1)));
    run_error(quantize(f32({1}, {1}), i64({}, {1})));
}

TEST(QuantizeLinear, Fp8SaturationAndZeroPoint) {
    const DType e4 = DType::Float8E4M3FN;
    Tensor x = f32({5}, {1000, -1000, 3, kNaN, 0.001f});
    Tensor zp = bytes(e4, {}, {0});
    Tensor sat = run_one(quantize(x, scalar_f32(2), zp));
    EXPECT_EQ(sat.dtype(), e4);
    std::vector<float> v = values_f32(sat);
    EXPECT_EQ(v[0], 448.0f);
    EXPECT_EQ(v[1], -448.0f);
    EXPECT_EQ(v[2], 1.5f);
    EXPECT_TRUE(std::isnan(v[3]));
    EXPECT_EQ(v[4], 0.0f);  // 0.0005 is below half the smallest subnormal (2^-9)
    Tensor nosat = run_one(quantize(x, scalar_f32(2), zp, {{"saturate", attr_i(0)}}));
    EXPECT_TRUE(std::isnan(values_f32(nosat)[0]));
    EXPECT_TRUE(std::isnan(values_f32(nosat)[1]));
    // E5M2 without saturation overflows to infinity.
    Tensor e5 = run_one(quantize(f32({2}, {1e6f, 1e6f}), scalar_f32(1),
                                 bytes(DType::Float8E5M2, {}, {0}), {{"saturate", attr_i(0)}}));
    EXPECT_EQ(values_f32(e5), (std::vector<float>{kInf, kInf}));
    std::string msg = run_error(quantize(x, scalar_f32(1), bytes(e4, {}, {0x38})));
    EXPECT_NE(msg.find("zero point"), std::string::npos) << msg;
}

class Fp8Grid : public ::testing::TestWithParam<DType> {};

// Every finite code survives float -> QuantizeLinear(scale 1) unchanged; NaN codes give NaN.
TEST_P(Fp8Grid, AllCodesRoundTrip) {
    const DType t = GetParam();
    std::vector<float> xs;
    for (int c = 0; c < 256; ++c) xs.push_back(fp8_to_float(static_cast<uint8_t>(c), t));
    Tensor y = run_one(
        quantize(f32({256}, xs), scalar_f32(1), bytes(t, {}, {0}), {{"saturate", attr_i(0)}}));
    const std::vector<uint8_t> codes = values<uint8_t>(y);
    for (int c = 0; c < 256; ++c) {
        if (std::isnan(xs[c])) {
            EXPECT_TRUE(std::isnan(fp8_to_float(codes[c], t))) << c;
        } else {
            EXPECT_EQ(codes[c], c) << dtype_name(t) << " code " << c << " = " << xs[c];
        }
    }
    // DequantizeLinear maps every code back to its value (scale 1).
    std::vector<uint8_t> all(256);
    for (int c = 0; c < 256; ++c) all[c] = static_cast<uint8_t>(c);
    std::vector<float> back =
        values<float>(run_one(dequantize(bytes(t, {256}, all), scalar_f32(1))));
    for (int c = 0; c < 256; ++c) {
        if (std::isnan(xs[c])) {
            EXPECT_TRUE(std::isnan(back[c]));
        } else {
            EXPECT_EQ(back[c], xs[c]) << c;
        }
    }
}

// Values exactly between two neighbouring codes round to the even code; a hair above or below
// goes to the nearer code. Checked on both signs, through QuantizeLinear with scale 1.
TEST_P(Fp8Grid, MidpointsRoundToEven) {
    const DType t = GetParam();
    const float max = fp8_max(t);
    std::vector<float> xs;
    std::vector<uint8_t> want;
    for (int c = 0; c < 0x7F; ++c) {
        const float a = fp8_to_float(static_cast<uint8_t>(c), t);
        const float b = fp8_to_float(static_cast<uint8_t>(c + 1), t);
        if (!std::isfinite(a) || !std::isfinite(b) || b > max) continue;
        const float m = (a + b) / 2;  // exact: fp8 values have few significant bits
        const uint8_t even = static_cast<uint8_t>((c & 1) ? c + 1 : c);
        for (float sign : {1.0f, -1.0f}) {
            const uint8_t s = sign < 0 ? 0x80 : 0x00;
            xs.push_back(sign * m);
            want.push_back(static_cast<uint8_t>(s | even));
            xs.push_back(sign * std::nextafter(m, kInf));
            want.push_back(static_cast<uint8_t>(s | (c + 1)));
            if (c > 0) {  // below the first midpoint -x would be -0, a different code in FNUZ
                xs.push_back(sign * std::nextafter(m, 0.0f));
                want.push_back(static_cast<uint8_t>(s | c));
            }
        }
    }
    ASSERT_GT(xs.size(), 300u);
    Tensor y = run_one(
        quantize(f32({static_cast<int64_t>(xs.size())}, xs), scalar_f32(1), bytes(t, {}, {0})));
    const std::vector<uint8_t> got = values<uint8_t>(y);
    for (size_t i = 0; i < xs.size(); ++i) {
        // In FNUZ types a negative value rounding to zero is +0 (0x80 is NaN there).
        const bool uz = t == DType::Float8E4M3FNUZ || t == DType::Float8E5M2FNUZ;
        const uint8_t w = (uz && (want[i] & 0x7F) == 0) ? 0 : want[i];
        EXPECT_EQ(got[i], w) << dtype_name(t) << " x=" << xs[i];
    }
}

INSTANTIATE_TEST_SUITE_P(Types, Fp8Grid,
                         ::testing::Values(DType::Float8E4M3FN, DType::Float8E4M3FNUZ,
                                           DType::Float8E5M2, DType::Float8E5M2FNUZ),
                         [](const auto& info) { return dtype_name(info.param); });

TEST(DequantizeLinear, TypesAndZeroPoints) {
    EXPECT_EQ(
        values<float>(run_one(dequantize(u8({3}, {0, 128, 255}), scalar_f32(0.5f), u8({}, {128})))),
        (std::vector<float>{-64, 0, 63.5f}));
    EXPECT_EQ(values<float>(run_one(dequantize(i8({2}, {-128, 127}), scalar_f32(2)))),
              (std::vector<float>{-256, 254}));
    // int32 (bias) input: no zero point, values beyond 2^24 round once.
    EXPECT_EQ(
        values<float>(run_one(dequantize(i32({3}, {100000, -7, 16777217}), scalar_f32(0.5f)))),
        (std::vector<float>{50000, -3.5f, 8388608}));
    std::string msg = run_error(dequantize(i32({1}, {1}), scalar_f32(1), i32({}, {3})));
    EXPECT_NE(msg.find("zero point"), std::string::npos) << msg;
    run_error(dequantize(i8({1}, {1}), scalar_f32(1), u8({}, {3})));
    run_error(dequantize(f32({1}, {1}), scalar_f32(1)));
    // Blocked (Dequantize-21 block_size): x[j] uses scale[j / 2] (more in quant_int4_test).
    EXPECT_EQ(values<float>(run_one(dequantize(i8({4}, {1, 2, 3, 4}), f32({2}, {1, 10}), {},
                                               {{"block_size", attr_i(2)}, {"axis", attr_i(0)}},
                                               21))),
              (std::vector<float>{1, 2, 30, 40}));
    run_error(dequantize(i8({4}, {1, 2, 3, 4}), f32({2}, {1, 1}), {},
                         {{"block_size", attr_i(5)}, {"axis", attr_i(0)}}, 21));
}

TEST(DequantizeLinear, OutputHasScaleDtype) {
    // (x - zp) * scale in float32, rounded once to float16.
    Tensor y = run_one(dequantize(i8({3}, {1, -3, 100}), f16({}, {0.1f}), i8({}, {0})));
    EXPECT_EQ(y.dtype(), DType::Float16);
    const float s = half_to_float(float_to_half(0.1f));
    EXPECT_EQ(values<uint16_t>(y),
              (std::vector<uint16_t>{float_to_half(1 * s), float_to_half(-3 * s),
                                     float_to_half(100 * s)}));
}

TEST(QuantDequant, RoundTripErrorIsAtMostHalfAStep) {
    std::vector<float> xs;
    for (int i = -300; i <= 300; ++i) xs.push_back(static_cast<float>(i) * 0.0137f);
    const float scale = 4.11f / 127;
    Tensor x = f32({static_cast<int64_t>(xs.size())}, xs);
    Tensor q = run_one(quantize(x, scalar_f32(scale), i8({}, {0})));
    Tensor d = run_one(dequantize(q, scalar_f32(scale), i8({}, {0})));
    const std::vector<float> back = values<float>(d);
    for (size_t i = 0; i < xs.size(); ++i) {
        EXPECT_LE(std::fabs(back[i] - xs[i]), scale / 2 * 1.0001f) << xs[i];
    }
}

KernelCall cast(Tensor x, DType to, std::map<std::string, Attr> attrs = {}) {
    attrs["to"] = attr_i(static_cast<int64_t>(to));
    return KernelCall{"Cast", {std::move(x)}, std::move(attrs)};
}

TEST(Cast, FloatToIntegerTruncatesTowardZero) {
    Tensor x = f32({6}, {2.7f, -2.7f, 0.5f, -0.5f, 126.99f, -128.5f});
    EXPECT_EQ(values<int32_t>(run_one(cast(x, DType::Int32))),
              (std::vector<int32_t>{2, -2, 0, 0, 126, -128}));
    EXPECT_EQ(values<int64_t>(run_one(cast(x, DType::Int64))),
              (std::vector<int64_t>{2, -2, 0, 0, 126, -128}));
    EXPECT_EQ(values<int8_t>(run_one(cast(x, DType::Int8))),
              (std::vector<int8_t>{2, -2, 0, 0, 126, -128}));
}

// Out-of-range float -> integer is undefined in ONNX; we match ONNX Runtime on x86-64
// (checked against onnxruntime 1.32): narrow types wrap, int32/int64 give their minimum for
// NaN and values outside their range.
TEST(Cast, OutOfRangeFloatToIntegerMatchesOnnxRuntimeX86) {
    Tensor x = f32({7}, {kNaN, 3e9f, -3e9f, 300, -1, 1e20f, 70000.5f});
    EXPECT_EQ(values<int8_t>(run_one(cast(x, DType::Int8))),
              (std::vector<int8_t>{0, 0, 0, 44, -1, 0, 112}));
    EXPECT_EQ(values<uint8_t>(run_one(cast(x, DType::UInt8))),
              (std::vector<uint8_t>{0, 0, 0, 44, 255, 0, 112}));
    EXPECT_EQ(values<int16_t>(run_one(cast(x, DType::Int16))),
              (std::vector<int16_t>{0, 0, 0, 300, -1, 0, 4464}));
    const int32_t m32 = std::numeric_limits<int32_t>::min();
    EXPECT_EQ(values<int32_t>(run_one(cast(x, DType::Int32))),
              (std::vector<int32_t>{m32, m32, m32, 300, -1, m32, 70000}));
    const int64_t m64 = std::numeric_limits<int64_t>::min();
    EXPECT_EQ(values<int64_t>(run_one(cast(x, DType::Int64))),
              (std::vector<int64_t>{m64, 3000000000LL, -3000000000LL, 300, -1, m64, 70000}));
}

TEST(Cast, ToNarrowFloatsRoundsToNearestEven) {
    // float16 spacing is 2 in [2048, 4096): 2049 ties to 2048, 2051 to 2052.
    Tensor h = run_one(cast(i64({3}, {2049, 2051, 70000}), DType::Float16));
    EXPECT_EQ(values_f32(h), (std::vector<float>{2048, 2052, kInf}));
    // bfloat16 spacing is 2^-7 at 1: 1 + 2^-8 ties to 1, 1 + 3 * 2^-8 to 1 + 2^-6.
    Tensor b = run_one(cast(f32({2}, {1 + 0x1p-8f, 1 + 0x3p-8f}), DType::BFloat16));
    EXPECT_EQ(values_f32(b), (std::vector<float>{1, 1 + 0x1p-6f}));
    Tensor d = run_one(cast(f64({1}, {0.1}), DType::Float32));
    EXPECT_EQ(values<float>(d), std::vector<float>{0.1f});
}

TEST(Cast, Fp8SaturateAttribute) {
    Tensor x = f32({4}, {1000, -1000, 1e6f, 0.3f});
    std::vector<float> sat = values_f32(run_one(cast(x, DType::Float8E4M3FN)));
    EXPECT_EQ(sat[0], 448);
    EXPECT_EQ(sat[1], -448);
    EXPECT_EQ(sat[3], fp8_to_float(float_to_fp8(0.3f, DType::Float8E4M3FN), DType::Float8E4M3FN));
    std::vector<float> nosat =
        values_f32(run_one(cast(x, DType::Float8E4M3FN, {{"saturate", attr_i(0)}})));
    EXPECT_TRUE(std::isnan(nosat[0]));
    std::vector<float> e5 =
        values_f32(run_one(cast(x, DType::Float8E5M2, {{"saturate", attr_i(0)}})));
    EXPECT_EQ(e5[2], kInf);
    EXPECT_EQ(values_f32(run_one(cast(x, DType::Float8E5M2)))[2], 57344);
    // FP8 -> float16 decodes exactly.
    Tensor codes = bytes(DType::Float8E4M3FN, {3}, {0x01, 0x7E, 0xB8});
    EXPECT_EQ(values_f32(run_one(cast(codes, DType::Float16))),
              (std::vector<float>{0x1p-9f, 448, -1}));
    // Same dtype is a bit copy: the NaN code keeps its sign bit.
    EXPECT_EQ(values<uint8_t>(
                  run_one(cast(bytes(DType::Float8E4M3FN, {1}, {0xFF}), DType::Float8E4M3FN))),
              std::vector<uint8_t>{0xFF});
}

TEST(Cast, BoolAndIntegers) {
    EXPECT_EQ(values<uint8_t>(run_one(cast(f32({4}, {0, -0.0f, kNaN, 0.1f}), DType::Bool))),
              (std::vector<uint8_t>{0, 0, 1, 1}));
    EXPECT_EQ(values<float>(run_one(cast(boolean({2}, {1, 0}), DType::Float32))),
              (std::vector<float>{1, 0}));
    EXPECT_EQ(values<int32_t>(run_one(cast(i64({2}, {0x100000005LL, -1}), DType::Int32))),
              (std::vector<int32_t>{5, -1}));
    EXPECT_EQ(values<uint8_t>(run_one(cast(i64({2}, {-1, 256}), DType::UInt8))),
              (std::vector<uint8_t>{255, 0}));
    EXPECT_EQ(values<float>(run_one(cast(i64({1}, {16777217}), DType::Float32))),
              std::vector<float>{16777216});
    // CastLike takes the dtype of its second input.
    Tensor like = run_one({"CastLike", {f32({2}, {1.9f, -1.9f}), i32({1}, {0})}});
    EXPECT_EQ(like.dtype(), DType::Int32);
    EXPECT_EQ(values<int32_t>(like), (std::vector<int32_t>{1, -1}));
}

TEST(Cast, RejectsBadTargets) {
    std::string msg = run_error(cast(f32({1}, {1}), DType::String));
    EXPECT_NE(msg.find("string"), std::string::npos) << msg;
    msg = run_error({"Cast", {f32({1}, {1})}});
    EXPECT_NE(msg.find("'to'"), std::string::npos) << msg;
    run_error({"Cast", {f32({1}, {1})}, {{"to", attr_i(99)}}});
}

}  // namespace
}  // namespace lowbit
