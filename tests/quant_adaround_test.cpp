// AdaRound (quant/adaround.h): the learned rounding against round-to-nearest on the layer
// reconstruction loss, the im2col mean against an explicit im2col, and bias correction against a
// direct convolution.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "core/int4.h"
#include "core/thread_pool.h"
#include "quant/adaround.h"

namespace lowbit::quant {
namespace {

// X [n, K] with strongly correlated columns (a shared component), its Gram matrix, and random
// weights [rows, K].
struct Layer {
    int64_t n, K, rows;
    std::vector<double> X, H, W;
};

Layer correlated_layer(int64_t n, int64_t K, int64_t rows, unsigned seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<double> nd;
    Layer l{n,
            K,
            rows,
            std::vector<double>(static_cast<size_t>(n * K)),
            std::vector<double>(static_cast<size_t>(K * K), 0.0),
            std::vector<double>(static_cast<size_t>(rows * K))};
    for (int64_t p = 0; p < n; ++p) {
        const double common = nd(rng);
        for (int64_t k = 0; k < K; ++k) l.X[p * K + k] = common + 0.3 * nd(rng);
    }
    for (int64_t p = 0; p < n; ++p)
        for (int64_t i = 0; i < K; ++i)
            for (int64_t j = 0; j < K; ++j) l.H[i * K + j] += l.X[p * K + i] * l.X[p * K + j];
    for (auto& w : l.W) w = nd(rng);
    return l;
}

// ||X (W - Q)^T||^2 computed from the data itself, not from H.
double output_error(const Layer& l, const std::vector<double>& Q) {
    double e = 0;
    for (int64_t p = 0; p < l.n; ++p) {
        for (int64_t r = 0; r < l.rows; ++r) {
            double d = 0;
            for (int64_t k = 0; k < l.K; ++k)
                d += l.X[p * l.K + k] * (l.W[r * l.K + k] - Q[r * l.K + k]);
            e += d * d;
        }
    }
    return e;
}

TEST(Adaround, LearnedRoundingBeatsRoundToNearestOnCorrelatedInputs) {
    const Layer l = correlated_layer(400, 24, 6, 5);
    // Per-row scales as INT4's amax / 7, one row with a per-element (blocked) scale pattern.
    auto scale = [&](int64_t r, int64_t k) {
        double amax = 0;
        for (int64_t j = 0; j < l.K; ++j) amax = std::max(amax, std::abs(l.W[r * l.K + j]));
        return r == 0 ? amax / 7 * (k < 12 ? 1.0 : 1.3) : amax / 7;
    };
    std::vector<double> Q_rtn(l.W.size());
    std::vector<int8_t> rtn(l.W.size());
    for (int64_t r = 0; r < l.rows; ++r) {
        for (int64_t k = 0; k < l.K; ++k) {
            const double s = scale(r, k);
            rtn[r * l.K + k] =
                static_cast<int8_t>(std::clamp(std::nearbyint(l.W[r * l.K + k] / s), -8.0, 7.0));
            Q_rtn[r * l.K + k] = rtn[r * l.K + k] * s;
        }
    }
    const double e_rtn = output_error(l, Q_rtn);
    for (double lambda : {0.1, 1.0, 5.0}) {
        AdaroundOptions o;
        o.lambda = lambda;
        std::vector<int8_t> codes;
        AdaroundStats st;
        ASSERT_TRUE(adaround_solve(l.W, l.rows, l.K, l.H, scale, o, codes, &st).is_ok());
        EXPECT_EQ(st.rows, l.rows);
        EXPECT_EQ(st.weights, l.rows * l.K);
        EXPECT_GT(st.flipped, 0);
        std::vector<double> Q(l.W.size());
        for (int64_t r = 0; r < l.rows; ++r) {
            for (int64_t k = 0; k < l.K; ++k) {
                const int8_t c = codes[r * l.K + k];
                EXPECT_GE(c, -8);
                EXPECT_LE(c, 7);
                // Up or down: never further than one step from round-to-nearest, and never
                // beyond the two grid points around the weight.
                EXPECT_LE(std::abs(c - rtn[r * l.K + k]), 1);
                EXPECT_LT(std::abs(c * scale(r, k) - l.W[r * l.K + k]), scale(r, k) * (1 + 1e-9));
                Q[r * l.K + k] = c * scale(r, k);
            }
        }
        // Row loss from H agrees with the loss from the data.
        double from_h = 0;
        for (int64_t r = 0; r < l.rows; ++r) {
            from_h += row_reconstruction_loss(&l.W[r * l.K], &Q[r * l.K], l.H, l.K);
        }
        const double e_ada = output_error(l, Q);
        EXPECT_NEAR(from_h, e_ada, 1e-6 * e_ada);
        EXPECT_LT(e_ada, 0.6 * e_rtn)
            << "lambda " << lambda << ": " << e_ada << " vs RTN " << e_rtn;
    }
}

TEST(Adaround, UncorrelatedInputsGiveRoundToNearest) {
    // Diagonal H: each weight's error counts alone, so the nearest grid point is optimal.
    const int64_t K = 6, rows = 2;
    std::vector<double> H(static_cast<size_t>(K * K), 0.0);
    for (int64_t i = 0; i < K; ++i) H[i * K + i] = 2.0 + i;
    H[2 * K + 2] = 0;  // a column never excited: its rounding does not matter; the regularizer
                       // alone drives it to the nearer point
    const std::vector<double> W = {0.33, -1.2, 0.9,  0.05, 2.6,  -0.74,
                                   1.1,  0.2,  -0.3, 0.6,  -2.2, 0.49};
    auto scale = [](int64_t, int64_t) { return 0.5; };
    std::vector<int8_t> codes;
    ASSERT_TRUE(adaround_solve(W, rows, K, H, scale, AdaroundOptions{}, codes).is_ok());
    for (size_t i = 0; i < W.size(); ++i) {
        EXPECT_EQ(codes[i], quantize_int4(static_cast<float>(W[i]), 0.5f)) << i;
    }
    AdaroundOptions bad;
    bad.lambda = -1;
    EXPECT_FALSE(adaround_solve(W, rows, K, H, scale, bad, codes).is_ok());
}

TEST(Adaround, WeightsAtTheGridEdgeStayOnTheGrid) {
    // w / s = 7 exactly (the channel's amax) and -7.6: rounding up from 7 would leave [-8, 7].
    const int64_t K = 3;
    std::vector<double> H = {4, 3.9, 3.9, 3.9, 4, 3.9, 3.9, 3.9, 4};
    const std::vector<double> W = {7.0, -7.6, 6.5};
    std::vector<int8_t> codes;
    ASSERT_TRUE(adaround_solve(
                    W, 1, K, H, [](int64_t, int64_t) { return 1.0; }, AdaroundOptions{}, codes)
                    .is_ok());
    EXPECT_EQ(codes[0], 7);
    EXPECT_TRUE(codes[1] == -8 || codes[1] == -7);
    EXPECT_TRUE(codes[2] == 6 || codes[2] == 7);
}

// Conv 4 -> 4 channels, group 2, 3x3, stride 2, pads (1, 0, 0, 1), dilation (1, 2).
Node test_conv() {
    Node n;
    n.op_type = "Conv";
    n.name = "c";
    n.attrs["group"] = Attr::make_int(2);
    n.attrs["strides"] = Attr::make_ints({2, 2});
    n.attrs["pads"] = Attr::make_ints({1, 0, 0, 1});
    n.attrs["dilations"] = Attr::make_ints({1, 2});
    return n;
}

Tensor random_tensor(const Shape& s, unsigned seed, float lo, float hi) {
    Tensor t(DType::Float32, s);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> ud(lo, hi);
    for (int64_t i = 0; i < t.numel(); ++i) t.data<float>()[i] = ud(rng);
    return t;
}

// Direct convolution of test_conv()'s geometry: y [N, 4, OH, OW] (no bias).
std::vector<double> conv_ref(const Tensor& x, const std::vector<double>& w, int64_t OH,
                             int64_t OW) {
    const int64_t N = x.dim(0), C = 4, H = x.dim(2), W = x.dim(3);
    std::vector<double> y(static_cast<size_t>(N * 4 * OH * OW), 0.0);
    for (int64_t b = 0; b < N; ++b)
        for (int64_t o = 0; o < 4; ++o)
            for (int64_t oy = 0; oy < OH; ++oy)
                for (int64_t ox = 0; ox < OW; ++ox) {
                    double s = 0;
                    for (int64_t c = 0; c < 2; ++c)
                        for (int64_t i = 0; i < 3; ++i)
                            for (int64_t j = 0; j < 3; ++j) {
                                const int64_t iy = oy * 2 - 1 + i, ix = ox * 2 + j * 2;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                const int64_t ci = (o / 2) * 2 + c;
                                s += w[o * 18 + c * 9 + i * 3 + j] *
                                     x.data<float>()[((b * C + ci) * H + iy) * W + ix];
                            }
                    y[((b * 4 + o) * OH + oy) * OW + ox] = s;
                }
    return y;
}

TEST(Adaround, BiasCorrectionZeroesTheMeanOutputError) {
    auto geo = conv_geometry(test_conv(), {4, 2, 3, 3});
    ASSERT_TRUE(geo.is_ok()) << geo.status().message();
    const int64_t N = 3, H = 7, W = 8;
    const int64_t OH = (H + 1 - 2 - 1) / 2 + 1, OW = (W + 1 - 4 - 1) / 2 + 1;
    // Inputs with a non-zero mean (post-activation-like), so the rounding error biases the output.
    const Tensor x = random_tensor({N, 4, H, W}, 9, 0.0f, 2.0f);
    const Tensor w = random_tensor({4, 2, 3, 3}, 11, -1.0f, 1.0f);
    Im2colMeanAccumulator acc(*geo);
    ThreadPool pool(2);
    // Two adds (two calibration samples) average as one.
    Tensor x0(DType::Float32, {1, 4, H, W}), x12(DType::Float32, {2, 4, H, W});
    std::copy(x.data<float>(), x.data<float>() + x0.numel(), x0.data<float>());
    std::copy(x.data<float>() + x0.numel(), x.data<float>() + x.numel(), x12.data<float>());
    ASSERT_TRUE(acc.add(x0, pool).is_ok());
    ASSERT_TRUE(acc.add(x12, pool).is_ok());
    EXPECT_EQ(acc.rows(), N * OH * OW);
    EXPECT_EQ(acc.samples(), N);
    const Int4Weight q = quantize_weight_int4(w, 0, 0, DType::Float32);
    const auto err = expected_output_error(w, q, *geo, acc.mean());
    std::vector<double> wf(72), wq(72);
    for (int64_t i = 0; i < 72; ++i) {
        wf[i] = w.data<float>()[i];
        wq[i] = q.q.data<int8_t>()[i] * static_cast<double>(q.scale.data<float>()[i / 18]);
    }
    const auto yf = conv_ref(x, wf, OH, OW), yq = conv_ref(x, wq, OH, OW);
    for (int64_t o = 0; o < 4; ++o) {
        double before = 0, after = 0;
        for (int64_t b = 0; b < N; ++b)
            for (int64_t p = 0; p < OH * OW; ++p) {
                const size_t at = static_cast<size_t>((b * 4 + o) * OH * OW + p);
                before += yq[at] - yf[at];
                after += yq[at] - err[o] - yf[at];
            }
        before /= N * OH * OW;
        after /= N * OH * OW;
        EXPECT_NEAR(err[o], before, 1e-6) << o;
        EXPECT_GT(std::abs(before), 1e-4) << o;  // there was something to correct
        EXPECT_NEAR(after, 0.0, 1e-6) << o;
    }
    Im2colMeanAccumulator bad(*geo);
    EXPECT_FALSE(bad.add(random_tensor({1, 3, H, W}, 1, 0, 1), pool).is_ok());
}

}  // namespace
}  // namespace lowbit::quant
