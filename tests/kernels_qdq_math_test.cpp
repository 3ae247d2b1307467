// The vectorized int8 loops of kernels/cpu/qdq_math.h (quantize_s8 with its masked tail,
// requantize_s8's table permutes) against the reference QuantizeLinear / DequantizeLinear
// kernels (runtime/kernels/ref/quant.cpp), on every length from 0 to 200 so that every tail
// width is covered, with ties, NaN, infinities and out-of-range values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernel_test_util.h"
#include "runtime/kernels/cpu/qdq_math.h"

namespace lowbit {
namespace {

using namespace lowbit::test;

KernelCall qdq(const char* op, Tensor x, float scale) {
    KernelCall c{op, {std::move(x), scalar_f32(scale), i8({}, {0})}, {}, 19};
    c.constant_inputs = {1, 2};
    return c;
}

std::vector<float> awkward_values(size_t n, std::mt19937& rng) {
    std::uniform_real_distribution<float> u(-300.0f, 300.0f);
    std::vector<float> v(n);
    for (size_t i = 0; i < n; ++i) {
        switch (i % 9) {
            case 0: v[i] = std::numeric_limits<float>::quiet_NaN(); break;
            case 1: v[i] = static_cast<float>(static_cast<int>(u(rng))) + 0.5f; break;  // tie
            case 2: v[i] = (i % 2 ? 1 : -1) * std::numeric_limits<float>::infinity(); break;
            default: v[i] = u(rng);
        }
    }
    return v;
}

TEST(QdqMath, QuantizeS8MatchesTheReferenceOnEveryTailLength) {
    std::mt19937 rng(3);
    for (float scale : {1.0f, 0.37f}) {
        for (int64_t n = 0; n <= 200; ++n) {
            const std::vector<float> v = awkward_values(static_cast<size_t>(n), rng);
            std::vector<int8_t> got(static_cast<size_t>(n) + 1, 77);  // one guard byte
            cpu::quantize_s8(v.data(), got.data(), n, scale);
            EXPECT_EQ(got[static_cast<size_t>(n)], 77) << "wrote past n=" << n;
            if (n == 0) continue;
            const Tensor ref = run_one(qdq("QuantizeLinear", f32({n}, v), scale));
            for (int64_t i = 0; i < n; ++i) {
                ASSERT_EQ(got[static_cast<size_t>(i)], ref.data<int8_t>()[i])
                    << "n " << n << " i " << i << " v " << v[static_cast<size_t>(i)];
            }
        }
    }
}

// quantize_s8 multiplies by the reciprocal of the scale and divides only where the product is
// within 2^-11 of a half-integer (qdq_math.h quantize16_s32): values whose exact quotient is a
// tie or one float32 step either side of it, at scales whose reciprocal is inexact, tiny or
// huge, with values that overflow the product, the int32 range or the float32 range.
TEST(QdqMath, QuantizeS8EqualsTheDivisionNearTiesAndAtTheEdges) {
    for (float scale : {0.0123f, 0.37f, 7.0f, 1e-30f, 3e30f, 1e-40f}) {
        std::vector<float> v;
        for (int k = -300; k <= 300; ++k) {
            const float tie = (static_cast<float>(k) + 0.5f) * scale;
            v.push_back(tie);
            v.push_back(std::nextafter(tie, std::numeric_limits<float>::infinity()));
            v.push_back(std::nextafter(tie, -std::numeric_limits<float>::infinity()));
            v.push_back(static_cast<float>(k) * scale);
        }
        for (float big : {2147483648.0f, 4294967296.0f, 1e10f, 3e38f}) {
            v.push_back(big);
            v.push_back(-big);
            v.push_back(big * scale);
            v.push_back(-big * scale);
        }
        const auto n = static_cast<int64_t>(v.size());
        std::vector<int8_t> got(v.size());
        cpu::quantize_s8(v.data(), got.data(), n, scale);
        const Tensor ref = run_one(qdq("QuantizeLinear", f32({n}, v), scale));
        for (int64_t i = 0; i < n; ++i) {
            ASSERT_EQ(got[static_cast<size_t>(i)], ref.data<int8_t>()[i])
                << "scale " << scale << " v " << v[static_cast<size_t>(i)];
        }
    }
}

TEST(QdqMath, RequantizeS8MatchesDequantizeThenQuantize) {
    std::mt19937 rng(5);
    for (auto [s_in, s_out] : {std::pair{0.05f, 0.05f}, {0.05f, 0.0731f}, {0.2f, 0.013f}}) {
        // The table as qmove.cpp builds it: every code through the reference pair.
        std::vector<int8_t> codes(256);
        for (int i = 0; i < 256; ++i) codes[static_cast<size_t>(i)] = static_cast<int8_t>(i - 128);
        const Tensor deq = run_one(qdq("DequantizeLinear", i8({256}, codes), s_in));
        const Tensor tab = run_one(qdq("QuantizeLinear", deq, s_out));
        const int8_t* table = tab.data<int8_t>();
        for (int64_t n = 0; n <= 200; ++n) {
            std::vector<int8_t> x(static_cast<size_t>(n));
            for (auto& c : x) c = static_cast<int8_t>(rng() & 0xff);
            std::vector<int8_t> got(static_cast<size_t>(n) + 1, 77);
            cpu::requantize_s8(table, x.data(), got.data(), n);
            EXPECT_EQ(got[static_cast<size_t>(n)], 77) << "wrote past n=" << n;
            for (int64_t i = 0; i < n; ++i) {
                ASSERT_EQ(got[static_cast<size_t>(i)],
                          table[static_cast<uint8_t>(x[static_cast<size_t>(i)]) ^ 0x80u])
                    << "n " << n << " i " << i;
            }
            // In place, as QMaxPool applies it.
            std::vector<int8_t> y = x;
            cpu::requantize_s8(table, y.data(), y.data(), n);
            EXPECT_TRUE(std::equal(y.begin(), y.end(), got.begin())) << n;
        }
    }
}

}  // namespace
}  // namespace lowbit
