// The int8 conv step's one-pass epilogue (kernels/cpu/qconv_epilogue.h) against its readable
// reference, bit for bit: every combination of bias, SiLU, residual (float32 or int8 codes) and
// output (float32 or int8), channel counts that leave every remainder modulo 16 (the bias
// repeats with period lcm(channels, 16)), pixel counts that end in a masked tail, and sums
// that land on rounding ties of the output scale.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "runtime/kernels/cpu/qconv_epilogue.h"

namespace lowbit {
namespace {

using cpu::QConvEpilogue;

TEST(QConvEpilogue, OnePassEqualsTheReferenceBitForBit) {
    std::mt19937 rng(7);
    std::normal_distribution<float> n(0.0f, 2.0f);
    const float y_scale = 0.03f, r_scale = 0.021f;
    int cases = 0;
    for (int64_t c : {1, 3, 8, 12, 15, 16, 17, 24, 31, 40, 48, 64, 144}) {
        for (int64_t pixels : {1, 5, 33}) {
            const int64_t len = c * pixels;
            std::vector<float> acc(static_cast<size_t>(len)), bias(static_cast<size_t>(c));
            for (auto& b : bias) b = n(rng);
            for (size_t i = 0; i < acc.size(); ++i) {
                // Every third sum a tie of the output scale before the bias and activation.
                acc[i] = i % 3 ? n(rng)
                               : (static_cast<float>(static_cast<int>(i % 50)) - 24.5f) * y_scale;
            }
            std::vector<float> rf(acc.size());
            std::vector<int8_t> rq(acc.size());
            for (size_t i = 0; i < acc.size(); ++i) {
                rf[i] = n(rng);
                rq[i] = static_cast<int8_t>(rng() & 0xff);
            }
            for (int flags = 0; flags < 24; ++flags) {
                const bool with_bias = flags & 1, silu = flags & 2, out_q = flags & 4;
                const auto res = static_cast<QConvEpilogue::Residual>(flags / 8);
                const QConvEpilogue e(with_bias ? bias : std::vector<float>{}, c, silu, res,
                                      r_scale, out_q, y_scale);
                const void* r =
                    res == QConvEpilogue::Residual::Float   ? static_cast<const void*>(rf.data())
                    : res == QConvEpilogue::Residual::Codes ? static_cast<const void*>(rq.data())
                                                            : nullptr;
                std::vector<float> a_fast = acc, a_ref = acc;
                std::vector<int8_t> y_fast(acc.size() + 1, 77), y_ref(acc.size() + 1, 77);
                e.run(a_fast.data(), pixels, r, out_q ? y_fast.data() : nullptr);
                e.run_reference(a_ref.data(), pixels, r, out_q ? y_ref.data() : nullptr);
                const std::string what = "c " + std::to_string(c) + " pixels " +
                                         std::to_string(pixels) + " flags " + std::to_string(flags);
                if (out_q) {
                    EXPECT_EQ(y_fast, y_ref) << what;
                    EXPECT_EQ(y_fast.back(), 77) << what << ": wrote past the end";
                } else {
                    EXPECT_EQ(std::memcmp(a_fast.data(), a_ref.data(), a_fast.size() * 4), 0)
                        << what;
                }
                ++cases;
            }
        }
    }
    EXPECT_EQ(cases, 13 * 3 * 24);
}

// A residual read as int8 codes is dequantized and then added, two roundings (the simulation's
// DequantizeLinear and Add); a fused multiply-add would round once and differ on some of these.
TEST(QConvEpilogue, ResidualCodesAreDequantizedThenAdded) {
    std::mt19937 rng(9);
    std::normal_distribution<float> n(0.0f, 3.0f);
    const float r_scale = 0.0173f;
    std::vector<float> acc(4096);
    std::vector<int8_t> r(acc.size());
    for (size_t i = 0; i < acc.size(); ++i) {
        acc[i] = n(rng);
        r[i] = static_cast<int8_t>(rng() & 0xff);
    }
    std::vector<float> got = acc;
    const QConvEpilogue e({}, 16, false, QConvEpilogue::Residual::Codes, r_scale, false, 1.0f);
    e.run(got.data(), static_cast<int64_t>(acc.size() / 16), r.data(), nullptr);
    for (size_t i = 0; i < acc.size(); ++i) {
        volatile float d = static_cast<float>(r[i]) * r_scale;  // DequantizeLinear's output
        ASSERT_EQ(got[i], acc[i] + d) << i;
    }
}

}  // namespace
}  // namespace lowbit
