// INT4 weights: the nibble packing of ONNX INT4/UINT4 (core/int4.h) and its file round trip
// (onnx/model_io), INT4 rounding, quantize_weight_int4's per-channel and blocked scales
// (quant/qdq_rewrite.h), and DequantizeLinear-21 with int4 x and block_size
// (runtime/kernels/ref/quant.cpp).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/int4.h"
#include "kernel_test_util.h"
#include "onnx/model_io.h"
#include "quant/qdq_rewrite.h"

namespace lowbit {
namespace {

using namespace lowbit::test;

Tensor i4(Shape shape, const std::vector<int8_t>& v) {
    Tensor t(DType::Int4, std::move(shape));
    for (size_t i = 0; i < v.size(); ++i) t.data<int8_t>()[i] = v[i];
    return t;
}

TEST(Int4Packing, LowNibbleFirstAsTheOnnxSpecOrdersIt) {
    // -1 = 0xF, 2 = 0x2, -8 = 0x8, 7 = 0x7, 5 (odd count: high nibble of the last byte is 0).
    const std::vector<int8_t> v = {-1, 2, -8, 7, 5};
    const std::string p = pack_int4(reinterpret_cast<const uint8_t*>(v.data()), 5);
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(static_cast<uint8_t>(p[0]), 0x2F);
    EXPECT_EQ(static_cast<uint8_t>(p[1]), 0x78);
    EXPECT_EQ(static_cast<uint8_t>(p[2]), 0x05);
    std::vector<uint8_t> back(5);
    unpack_int4(reinterpret_cast<const uint8_t*>(p.data()), 5, true, back.data());
    for (size_t i = 0; i < 5; ++i) EXPECT_EQ(static_cast<int8_t>(back[i]), v[i]) << i;
    // Unsigned: the same nibbles read 0..15.
    unpack_int4(reinterpret_cast<const uint8_t*>(p.data()), 5, false, back.data());
    EXPECT_EQ(back, (std::vector<uint8_t>{15, 2, 8, 7, 5}));
    EXPECT_EQ(int4_packed_bytes(0), 0u);
    EXPECT_EQ(int4_packed_bytes(7), 4u);
}

TEST(Int4Packing, EveryValueRoundTripsThroughATensorProto) {
    std::vector<int8_t> all;
    for (int v = -8; v <= 7; ++v) all.push_back(static_cast<int8_t>(v));
    all.push_back(-3);  // odd count
    Tensor t = i4({17}, all);
    auto bytes = serialize_tensor(t, "w");
    ASSERT_TRUE(bytes.is_ok()) << bytes.status().message();
    auto back = parse_tensor(*bytes);
    ASSERT_TRUE(back.is_ok()) << back.status().message();
    EXPECT_EQ(back->dtype(), DType::Int4);
    EXPECT_EQ(back->shape(), (Shape{17}));
    EXPECT_EQ(values<int8_t>(*back), all);
    // The proto holds the 9 packed bytes as raw_data, not one byte per value.
    EXPECT_NE(bytes->find(pack_int4(reinterpret_cast<const uint8_t*>(all.data()), 17)),
              std::string::npos);
    EXPECT_LT(bytes->size(), 17u + 6u);
    Tensor u(DType::UInt4, {3});
    u.data<uint8_t>()[0] = 0;
    u.data<uint8_t>()[1] = 15;
    u.data<uint8_t>()[2] = 9;
    auto ub = parse_tensor(*serialize_tensor(u, "u"));
    ASSERT_TRUE(ub.is_ok());
    EXPECT_EQ(values<uint8_t>(*ub), (std::vector<uint8_t>{0, 15, 9}));
}

TEST(Int4Packing, RawDataOfTheWrongSizeIsAnError) {
    Tensor t = i4({4}, {1, 2, 3, 4});
    auto bytes = serialize_tensor(t, "w");
    ASSERT_TRUE(bytes.is_ok());
    // Re-label the same bytes as 6 values: 3 bytes needed, 2 present.
    Tensor t6 = i4({6}, {1, 2, 3, 4, 5, 6});
    auto b6 = serialize_tensor(t6, "w");
    ASSERT_TRUE(b6.is_ok());
    std::string broken = *b6;
    const std::string good = pack_int4(reinterpret_cast<const uint8_t*>(t6.raw()), 6);
    const size_t at = broken.find(good);
    ASSERT_NE(at, std::string::npos);
    broken.erase(at + 2, 1);  // drop one byte; raw_data's length prefix then disagrees
    broken[at - 1] = 2;
    auto r = parse_tensor(broken);
    ASSERT_FALSE(r.is_ok());
    EXPECT_NE(r.status().message().find("raw_data has 2 bytes, expected 3"), std::string::npos)
        << r.status().message();
}

TEST(Int4Rounding, HalfToEvenAndSaturating) {
    EXPECT_EQ(quantize_int4(0.5f, 1), 0);
    EXPECT_EQ(quantize_int4(1.5f, 1), 2);
    EXPECT_EQ(quantize_int4(2.5f, 1), 2);
    EXPECT_EQ(quantize_int4(-2.5f, 1), -2);
    EXPECT_EQ(quantize_int4(6.6f, 1), 7);
    EXPECT_EQ(quantize_int4(7.6f, 1), 7);
    EXPECT_EQ(quantize_int4(-7.6f, 1), -8);
    EXPECT_EQ(quantize_int4(-100.0f, 1), -8);
    EXPECT_EQ(quantize_int4(std::numeric_limits<float>::infinity(), 1), 7);
    EXPECT_EQ(quantize_int4(std::numeric_limits<float>::quiet_NaN(), 1), 0);
    EXPECT_EQ(quantize_int4(0.3f, 0.1f), 3);  // x / scale as one float division
}

TEST(Int4Weights, PerOutputChannelScaleIsAmaxOverSeven) {
    // Conv weight [2, 2, 1, 1]: channel 0 amax 7 (scale 1), channel 1 amax 0.7 (scale 0.1).
    Tensor w = f32({2, 2, 1, 1}, {7.0f, -3.4f, 0.7f, 0.25f});
    quant::Int4Weight q = quant::quantize_weight_int4(w, 0, 0, DType::Float32);
    EXPECT_EQ(q.q.dtype(), DType::Int4);
    EXPECT_EQ(q.scale.shape(), (Shape{2}));
    EXPECT_EQ(q.dq_axis, 0);
    EXPECT_EQ(q.block_size, 0);
    EXPECT_FLOAT_EQ(values<float>(q.scale)[0], 1.0f);
    EXPECT_FLOAT_EQ(values<float>(q.scale)[1], 0.1f);
    EXPECT_EQ(values<int8_t>(q.q), (std::vector<int8_t>{7, -3, 7, 2}));  // 2.5 -> 2 (even)
    // An all-zero channel gets scale 1 and zero codes.
    quant::Int4Weight z = quant::quantize_weight_int4(f32({2, 1}, {0, 0}), 1, 0, DType::Float32);
    EXPECT_FLOAT_EQ(values<float>(z.scale)[0], 1.0f);
}

TEST(Int4Weights, BlocksRunAlongInputChannels) {
    // Conv weight [1, 5, 1, 2] in blocks of 2 input channels: scale [1, 3, 1, 2], the last
    // block holding one channel; each (block, tap) has its own amax.
    std::vector<float> v = {1, 7,  2, -14,  //
                            3, 0.7f, -6, 0,  //
                            21, 1};
    Tensor w = f32({1, 5, 1, 2}, v);
    quant::Int4Weight q = quant::quantize_weight_int4(w, 0, 2, DType::Float32);
    EXPECT_EQ(q.dq_axis, 1);
    EXPECT_EQ(q.block_size, 2);
    EXPECT_EQ(q.scale.shape(), (Shape{1, 3, 1, 2}));
    const std::vector<float> s = values<float>(q.scale);
    const std::vector<float> want = {2.0f / 7, 2.0f, 6.0f / 7, 0.1f, 3.0f, 1.0f / 7};
    for (size_t i = 0; i < 6; ++i) EXPECT_FLOAT_EQ(s[i], want[i]) << i;
    const std::vector<int8_t> codes = values<int8_t>(q.q);
    for (size_t i = 0; i < v.size(); ++i) {
        const size_t e = (i / 2) / 2 * 2 + i % 2;  // (block of channel i / 2, tap i % 2)
        EXPECT_EQ(codes[i], quantize_int4(v[i], s[e])) << i;
    }
    EXPECT_EQ(codes[1], 4);   // 7 / 2 = 3.5: half to even
    EXPECT_EQ(codes[3], -7);  // the block's amax maps onto 7
    EXPECT_EQ(codes[8], 7);
    // 2-D MatMul weight [K=4, N=2], output channel axis 1: blocks along K (axis 0).
    quant::Int4Weight m = quant::quantize_weight_int4(f32({4, 2}, {1, 2, 3, 4, 5, 6, 7, 8}), 1,
                                                      2, DType::Float32);
    EXPECT_EQ(m.dq_axis, 0);
    EXPECT_EQ(m.scale.shape(), (Shape{2, 2}));
    // A block size above the axis length is one block.
    quant::Int4Weight one = quant::quantize_weight_int4(w, 0, 64, DType::Float32);
    EXPECT_EQ(one.scale.shape(), (Shape{1, 1, 1, 2}));
    EXPECT_EQ(one.block_size, 5);
}

KernelCall dq(Tensor x, Tensor scale, std::map<std::string, Attr> attrs, int64_t opset = 21) {
    KernelCall c{"DequantizeLinear", {std::move(x), std::move(scale)}, std::move(attrs), opset};
    c.constant_inputs = {1};
    return c;
}

TEST(Int4Dequantize, PerAxisAndBlockedMatchTheQuantizedWeight) {
    std::vector<float> v;
    for (int i = 0; i < 3 * 5 * 2 * 2; ++i) v.push_back(std::sin(0.37f * i) * (1 + i % 3));
    Tensor w = f32({3, 5, 2, 2}, v);
    for (int64_t block : {0, 2, 3, 5}) {
        quant::Int4Weight q = quant::quantize_weight_int4(w, 0, block, DType::Float32);
        std::map<std::string, Attr> attrs = {{"axis", attr_i(q.dq_axis)}};
        if (q.block_size) attrs["block_size"] = attr_i(q.block_size);
        Tensor y = run_one(dq(q.q, q.scale, attrs));
        ASSERT_EQ(y.shape(), w.shape());
        const std::vector<float> got = values<float>(y);
        const std::vector<float> s = values<float>(q.scale);
        const std::vector<int8_t> c = values<int8_t>(q.q);
        for (size_t i = 0; i < v.size(); ++i) {
            // Element (o, j, k) with x viewed as [o, j, kh*kw] (block axis 1, or axis 0).
            const size_t o = i / 20, j = (i / 4) % 5, k = i % 4;
            const size_t e = block == 0 ? o : (o * ((5 + q.block_size - 1) / q.block_size) +
                                               j / q.block_size) * 4 + k;
            EXPECT_EQ(got[i], c[i] * s[e]) << "block " << block << " i " << i;
            EXPECT_LE(std::fabs(got[i] - v[i]), 0.5f * s[e] + 1e-6f) << "block " << block;
        }
    }
}

TEST(Int4Dequantize, BlockSizeIsValidated) {
    Tensor x = i4({2, 6}, {1, 2, 3, 4, 5, 6, -1, -2, -3, -4, -5, -6});
    Tensor s = f32({2, 3}, {1, 2, 3, 4, 5, 6});
    Tensor y = run_one(dq(x, s, {{"axis", attr_i(1)}, {"block_size", attr_i(2)}}));
    EXPECT_EQ(values<float>(y),
              (std::vector<float>{1, 2, 6, 8, 15, 18, -4, -8, -15, -20, -30, -36}));
    // 3 scales for 6 elements accept block sizes 2 only (ceil(6/3)=2 .. ceil(6/2)-1=2).
    EXPECT_NE(run_error(dq(x, s, {{"axis", attr_i(1)}, {"block_size", attr_i(4)}}))
                  .find("does not fit 3 scales"),
              std::string::npos);
    EXPECT_NE(run_error(dq(x, s, {{"axis", attr_i(1)}, {"block_size", attr_i(-2)}}))
                  .find("must be positive"),
              std::string::npos);
    // Scale shape must equal x's except along the axis.
    EXPECT_NE(run_error(dq(x, f32({1, 3}, {1, 2, 3}), {{"axis", attr_i(1)},
                                                        {"block_size", attr_i(2)}}))
                  .find("must equal x's shape"),
              std::string::npos);
    // A rank-2 scale without block_size, and block_size below opset 21.
    EXPECT_NE(run_error(dq(x, s, {{"axis", attr_i(1)}})).find("needs attribute 'block_size'"),
              std::string::npos);
    EXPECT_NE(run_error(dq(x, s, {{"axis", attr_i(1)}, {"block_size", attr_i(2)}}, 19))
                  .find("opset >= 21"),
              std::string::npos);
}

}  // namespace
}  // namespace lowbit
