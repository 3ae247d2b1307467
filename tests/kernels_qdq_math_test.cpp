// The vectorized int8 loops of kernels/cpu/qdq_math.h (quantize_s8 with its masked tail,
// requantize_s8's table permutes) against the reference QuantizeLinear / DequantizeLinear
// kernels (runtime/kernels/ref/quant.cpp), on every length from 0 to 200 so that every tail
// width is covered, with ties, NaN, infinities and out-of-range values.
#include <gtest/gtest.h>

#include <algorithm>
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

#if defined(__AVX512F__)
// silu_quantize16_s32 (the int8 conv epilogue's SiLU and quantization: a coarse SiLU wherever
// it settles the rounding) against the precise path alone, quantize16_s32(x * sigmoid512(x) +
// r), code for code: at the values whose SiLU lies on or near each code's rounding boundary,
// on both branches of SiLU (it falls to its minimum -0.2785 at x = -1.2785, then rises), from
// the boundary out to 1e-3 relative either side (the coarse SiLU is within 1.5e-4), with and
// without a residual, and on random and special values, at scales whose reciprocal is inexact,
// tiny or not a normal number.
float silu_double(double x) { return static_cast<float>(x / (1.0 + std::exp(-x))); }

// x in [lo, hi] (SiLU monotonic there) where the double SiLU is closest to target.
float solve_silu(double target, double lo, double hi) {
    const bool rising = silu_double(hi) > silu_double(lo);
    for (int i = 0; i < 200; ++i) {
        const double mid = 0.5 * (lo + hi);
        ((silu_double(mid) < target) == rising ? lo : hi) = mid;
    }
    return static_cast<float>(0.5 * (lo + hi));
}

std::vector<float> silu_boundary_values(float scale) {
    std::vector<float> x;
    const double x_min = -1.2784645;  // SiLU's minimum
    for (int k = -140; k <= 140; ++k) {
        const double target = (k + 0.5) * scale;
        if (target < -0.2784) continue;
        std::vector<float> roots = {solve_silu(target, x_min, 1e4)};
        if (target < 0) roots.push_back(solve_silu(target, -120.0, x_min));
        for (float root : roots) {
            // The root and 40 float32 steps either side of it.
            float up = root, down = root;
            x.push_back(root);
            for (int j = 0; j < 40; ++j) {
                up = std::nextafter(up, 1e30f);
                down = std::nextafter(down, -1e30f);
                x.push_back(up);
                x.push_back(down);
            }
            for (float rel = 1e-6f; rel < 1e-3f; rel *= 1.7f) {
                x.push_back(root * (1.0f + rel));
                x.push_back(root * (1.0f - rel));
            }
        }
    }
    return x;
}

// The codes of x's SiLU plus r (none when empty), by either path.
std::vector<int8_t> silu_codes(const std::vector<float>& x, const std::vector<float>& r,
                               float scale, bool precise) {
    const cpu::QScale16 vs(scale);
    const cpu::SiluCodes sc(vs);
    std::vector<int8_t> out(x.size());
    for (size_t i = 0; i < x.size(); i += 16) {
        const auto n = static_cast<int>(std::min<size_t>(16, x.size() - i));
        const auto m = static_cast<__mmask16>((1u << n) - 1);
        const __m512 v = _mm512_maskz_loadu_ps(m, x.data() + i);
        const __m512 rv = r.empty() ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m, r.data() + i);
        const auto add = [&](__m512 a) { return r.empty() ? a : _mm512_add_ps(a, rv); };
        const __m512i q = precise
                              ? cpu::quantize16_s32(add(_mm512_mul_ps(v, cpu::sigmoid512(v))), vs)
                              : cpu::silu_quantize16_s32(v, vs, sc, add);
        _mm_mask_storeu_epi8(out.data() + i, m, _mm512_cvtsepi32_epi8(q));
    }
    return out;
}

TEST(QdqMath, SiluCodesEqualThePreciseSiluNearEveryBoundary) {
    std::mt19937 rng(9);
    std::uniform_real_distribution<float> wide(-20.0f, 20.0f), res(-3.0f, 3.0f);
    const float inf = std::numeric_limits<float>::infinity();
    for (float scale : {0.0123f, 0.05f, 0.0437f, 0.37f, 3.1f, 1e-30f, 1e-40f}) {
        std::vector<float> x = silu_boundary_values(scale);
        for (int i = 0; i < 20000; ++i) x.push_back(wide(rng));
        for (float v : {std::numeric_limits<float>::quiet_NaN(), inf, -inf, 0.0f, -0.0f, 1e30f,
                        -1e30f, 87.9f, 88.5f, -87.9f, -88.5f, -200.0f, 1e-40f, -1e-40f,
                        127.5f * scale, 300.0f * scale, -1.2784645f}) {
            x.push_back(v);
        }
        SCOPED_TRACE(testing::Message() << "scale " << scale << ", " << x.size() << " values");
        const std::vector<int8_t> want = silu_codes(x, {}, scale, true);
        const std::vector<int8_t> got = silu_codes(x, {}, scale, false);
        for (size_t i = 0; i < x.size(); ++i) {
            ASSERT_EQ(got[i], want[i]) << "x " << x[i] << " (" << std::hexfloat << x[i] << ")";
        }
        // With a residual: the boundaries move, so residuals near code steps as well.
        std::vector<float> r(x.size());
        for (size_t i = 0; i < r.size(); ++i) {
            r[i] = i % 3 == 0 ? res(rng) : std::round(res(rng)) * scale;
        }
        const std::vector<int8_t> want_r = silu_codes(x, r, scale, true);
        const std::vector<int8_t> got_r = silu_codes(x, r, scale, false);
        for (size_t i = 0; i < x.size(); ++i) {
            ASSERT_EQ(got_r[i], want_r[i]) << "x " << x[i] << " r " << r[i];
        }
    }
}

// quantize16_settled settles a lane whose t is less than `room` from an integer (so more than
// 0.5 - room from a half-integer), with the rounded code, and refuses the rest: lanes nearer a
// tie, NaN, the infinities, beyond int32.
TEST(QdqMath, QuantizeSettledRefusesLanesNearATie) {
    const auto settled = [](float t, float room, int32_t* code) {
        __m512i q;
        const bool ok = cpu::quantize16_settled(_mm512_set1_ps(t), _mm512_set1_ps(room), &q);
        *code = _mm_cvtsi128_si32(_mm512_castsi512_si128(q));
        return ok;
    };
    int32_t c = 0;
    EXPECT_TRUE(settled(3.2f, 0.25f, &c));
    EXPECT_EQ(c, 3);
    EXPECT_TRUE(settled(-3.9f, 0.25f, &c));
    EXPECT_EQ(c, -4);
    EXPECT_FALSE(settled(-3.7f, 0.25f, &c));  // 0.3 from -4, 0.2 from the tie -3.5
    EXPECT_FALSE(settled(3.3f, 0.25f, &c));
    EXPECT_FALSE(settled(2.5f, 0.49f, &c));
    EXPECT_FALSE(settled(std::numeric_limits<float>::quiet_NaN(), 0.49f, &c));
    EXPECT_FALSE(settled(std::numeric_limits<float>::infinity(), 0.49f, &c));
    EXPECT_FALSE(settled(3e9f, 0.49f, &c));
    EXPECT_FALSE(settled(1.0f, std::numeric_limits<float>::quiet_NaN(), &c));
    EXPECT_TRUE(settled(5000.0f, 0.49f, &c));  // saturates in vpmovsdb, as v / s would
    EXPECT_EQ(c, 5000);
}
#endif

}  // namespace
}  // namespace lowbit
