// kernels/cpu/vmath.h's exp, sigmoid and SiLU loops against float64 std::exp, on a dense sweep
// over the range where the results are normal floats, on every tail length up to 40, and on the
// special values: NaN stays NaN, the infinities and huge magnitudes saturate as the reference
// expressions do. Without AVX-512 the loops are std::exp itself and the test checks that.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "runtime/kernels/cpu/vmath.h"

namespace lowbit {
namespace {

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Largest relative error of f over [lo, hi) in `step` steps, where the reference exceeds
// `floor` in magnitude (below it the results are denormal or flushed, by design).
template <class F, class R>
double max_rel_error(F f, R ref, float lo, float hi, float step, double floor) {
    std::vector<float> x;
    for (float v = lo; v < hi; v += step) x.push_back(v);
    std::vector<float> y(x.size());
    f(x.data(), y.data(), static_cast<int64_t>(x.size()));
    double worst = 0.0;
    for (size_t i = 0; i < x.size(); ++i) {
        const double r = ref(static_cast<double>(x[i]));
        if (std::fabs(r) <= floor) continue;
        worst = std::max(worst, std::fabs(static_cast<double>(y[i]) - r) / std::fabs(r));
    }
    return worst;
}

// The bounds are vmath.h's stated 1e-6; the measured errors are a few 1e-7. A polynomial with
// a wrong coefficient (one digit off in the 4th place) gives 1e-5 or more.
TEST(Vmath, ExpSigmoidSiluWithinOneMillionthRelative) {
    EXPECT_LT(max_rel_error(cpu::exp_f32, [](double x) { return std::exp(x); }, -87.0f, 88.0f,
                            1e-3f, 0.0),
              1e-6);
    EXPECT_LT(max_rel_error(cpu::sigmoid_f32, sigmoid_ref, -87.0f, 100.0f, 1e-4f, 1e-30), 1e-6);
    EXPECT_LT(max_rel_error(cpu::silu_f32, [](double x) { return x * sigmoid_ref(x); }, -87.0f,
                            100.0f, 1e-4f, 1e-30),
              1e-6);
    // Near 0, where SiLU is tiny and only relative accuracy counts.
    EXPECT_LT(max_rel_error(cpu::silu_f32, [](double x) { return x * sigmoid_ref(x); }, -1e-3f,
                            1e-3f, 1e-7f, 0.0),
              1e-6);
}

TEST(Vmath, EveryTailLengthMatchesTheFullVectors) {
    std::vector<float> x(40);
    for (size_t i = 0; i < x.size(); ++i) x[i] = -9.5f + 0.47f * static_cast<float>(i);
    std::vector<float> whole(x.size()), part(x.size());
    cpu::silu_f32(x.data(), whole.data(), static_cast<int64_t>(x.size()));
    for (int64_t n = 0; n <= static_cast<int64_t>(x.size()); ++n) {
        std::fill(part.begin(), part.end(), -7.0f);
        cpu::silu_f32(x.data(), part.data(), n);
        for (int64_t i = 0; i < static_cast<int64_t>(x.size()); ++i) {
            EXPECT_EQ(part[i], i < n ? whole[i] : -7.0f) << "n " << n << " i " << i;
        }
    }
}

TEST(Vmath, SpecialValues) {
    const float inf = std::numeric_limits<float>::infinity();
    const float nan = std::numeric_limits<float>::quiet_NaN();
    const std::vector<float> x = {nan, inf, -inf, 0.0f, -0.0f, 1e30f, -1e30f, 88.5f, -200.0f};
    std::vector<float> sig(x.size()), silu(x.size());
    cpu::sigmoid_f32(x.data(), sig.data(), static_cast<int64_t>(x.size()));
    cpu::silu_f32(x.data(), silu.data(), static_cast<int64_t>(x.size()));
    EXPECT_TRUE(std::isnan(sig[0]));
    EXPECT_TRUE(std::isnan(silu[0]));
    EXPECT_EQ(sig[1], 1.0f);
    EXPECT_EQ(silu[1], inf);
    EXPECT_LE(sig[2], 1e-37f);
    EXPECT_GE(sig[2], 0.0f);
    EXPECT_EQ(sig[3], 0.5f);
    EXPECT_EQ(silu[3], 0.0f);
    EXPECT_EQ(silu[4], 0.0f);
    EXPECT_EQ(silu[5], 1e30f);
    EXPECT_EQ(sig[5], 1.0f);
    EXPECT_LE(std::fabs(silu[6]), 1e-8f);  // the reference gives -0; the reciprocal is denormal
    EXPECT_EQ(silu[7], 88.5f);
    EXPECT_LE(std::fabs(silu[8]), 1e-35f);
    EXPECT_LE(silu[8], 0.0f);
}

}  // namespace
}  // namespace lowbit
